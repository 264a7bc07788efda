//! The call list and stats with two channels: a text that replaced a failed WhatsApp message,
//! a text that failed too, patients the schedule gives no messages, numbers that opted out of
//! texts; stats per channel, each appointment once.

use super::*;
use crate::store::CallOutcome;

const T0: i64 = 1_800_000_000;

fn at(offset: i64) -> DateTime<Utc> {
    crate::time::from_unix(T0 + offset)
}

/// A store with the shipped clinics and, at Mumbai, appointments 1 (Priya), 2 (Rohan) and 3
/// (Sneha) a day after `T0`, each with its own number.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Store::open(&dir.path().join("c.db")).expect("open");
    let config = crate::config::Config::example().expect("config");
    s.sync_clinics(&config.clinics).expect("clinics");
    for (id, name, phone) in [
        (1, "Priya Patil", "+919876543210"),
        (2, "Rohan Gupta", "+919123456789"),
        (3, "Sneha Kulkarni", "+919988776655"),
    ] {
        s.conn
            .execute_batch(&format!(
                "INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
                   SELECT {id}, id, 'P-{id}', '{name}', '{phone}', 'en', {T0}, {T0} FROM clinics WHERE key = 'mumbai';
                 INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status_at, created_at, updated_at)
                   SELECT {id}, id, 'MUM-{id}', {id}, 'Dr. Mehta', {T0} + 86400 + {id} * 600, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';"
            ))
            .expect("schedule");
    }
    (dir, s)
}

/// Appends an outbox row for appointment `a` as dispatch leaves it; its id.
fn message(s: &Store, a: i64, rule: &str, channel: &str, state: &str, extra: &str) -> i64 {
    s.conn
        .execute_batch(&format!(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, channel,
                                 request_at, created_at, updated_at)
             SELECT {a}, 'reminder', '{rule}', starts_at, {T0}, starts_at, '{state}', '{channel}', {T0} + (SELECT count(*) FROM outbox),
                    {T0}, {T0} + 30 FROM appointments WHERE id = {a};
             UPDATE outbox SET {extra} WHERE id = (SELECT max(id) FROM outbox);"
        ))
        .expect("message");
    s.conn
        .query_row("SELECT max(id) FROM outbox", (), |r| r.get(0))
        .expect("id")
}

/// Each listed appointment (by row id) and its reasons, over the coming two days.
fn listed(s: &Store, sms: bool) -> Vec<(i64, Vec<String>)> {
    s.follow_ups("mumbai", at(0), at(2 * 86400), 2, sms)
        .expect("follow-ups")
        .into_iter()
        .map(|f| (f.id, f.reasons))
        .collect()
}

#[test]
fn a_whatsapp_failure_a_text_mended_is_no_reason_to_call() {
    let (_dir, s) = store();
    // Both rules went out on WhatsApp; the second failed (not on WhatsApp) and a text
    // replaces it, as dispatch writes them: no `needs_staff` on the WhatsApp row.
    message(&s, 1, "day-before", "whatsapp", "read", "last_error = NULL");
    let wa = message(
        &s,
        1,
        "same-day",
        "whatsapp",
        "failed",
        "last_error_code = 131026, last_error = 'Message undeliverable'",
    );
    let sms = message(
        &s,
        1,
        "same-day",
        "sms",
        "pending",
        &format!("fallback_of = {wa}, request_at = NULL"),
    );
    assert_eq!(
        listed(&s, true),
        [],
        "the text is on its way: not every reminder has gone out yet"
    );
    for state in ["sent", "delivered"] {
        s.conn
            .execute(
                "UPDATE outbox SET state = ?2, request_at = ?3 WHERE id = ?1",
                params![sms, state, T0 + 60],
            )
            .expect("text");
        assert_eq!(
            listed(&s, true),
            [(1, vec!["no answer after all reminders".to_string()])],
            "the text ({state}) reached them: only the unanswered reminders count"
        );
    }
}

#[test]
fn a_text_that_failed_too_lists_both_reasons_whole() {
    let (_dir, mut s) = store();
    let wa = message(
        &s,
        2,
        "day-before",
        "whatsapp",
        "failed",
        "last_error_code = 131026",
    );
    let both = "WhatsApp failed ((131026) Message undeliverable, try later) and the text failed too (the carrier blocked the text): call them";
    message(
        &s,
        2,
        "day-before",
        "sms",
        "failed",
        &format!("fallback_of = {wa}, needs_staff = '{both}'"),
    );
    assert_eq!(listed(&s, true), [(2, vec![both.to_string()])]);
    s.record_call(2, CallOutcome::LeftMessage, None, "staff:asha", at(120))
        .expect("call");
    assert_eq!(listed(&s, true), [], "a message left tells them");
}

#[test]
fn a_patient_the_schedule_gives_no_messages_is_listed_until_told() {
    let (_dir, mut s) = store();
    s.conn
        .execute_batch("UPDATE patients SET channel = 'none' WHERE id = 1; UPDATE patients SET channel = 'sms' WHERE id = 3;")
        .expect("channels");
    let none = "no automated messages (the schedule says: call them)".to_string();
    assert_eq!(listed(&s, true), [(1, vec![none.clone()])]);
    let listed_without_sms = listed(&s, false);
    assert_eq!(
        listed_without_sms.len(),
        2,
        "texts only, and no text service"
    );
    assert_eq!(listed_without_sms[0], (1, vec![none]));
    assert!(listed_without_sms[1].1[0].starts_with("no automated messages"));
    s.record_call(1, CallOutcome::NoAnswer, None, "staff:asha", at(60))
        .expect("call");
    assert_eq!(listed(&s, true).len(), 1, "no answer settles nothing");
    s.record_call(1, CallOutcome::Reached, None, "staff:asha", at(120))
        .expect("call");
    assert_eq!(listed(&s, true), []);
    s.record_call(3, CallOutcome::LeftMessage, None, "staff:asha", at(120))
        .expect("call");
    assert_eq!(listed(&s, false).len(), 0);
}

#[test]
fn a_text_skipped_because_the_number_opted_out_lists_the_patient() {
    let (_dir, mut s) = store();
    s.conn
        .execute_batch(&format!(
            "INSERT INTO numbers (phone, sms_opted_out_at, sms_opt_out_source, updated_at)
               VALUES ('+919876543210', {T0}, 'reply', {T0}), ('+919988776655', {T0} + 100, 'reply', {T0} + 100);"
        ))
        .expect("opted out");
    let skipped = "state = 'skipped', request_at = NULL, reason = 'the number opted out of text messages (STOP)'";
    message(&s, 1, "day-before", "sms", "skipped", skipped);
    // Sneha's text was skipped (confirmed) before her number opted out: not for that reason.
    message(
        &s,
        3,
        "day-before",
        "sms",
        "skipped",
        "request_at = NULL, reason = 'the patient already confirmed'",
    );
    assert_eq!(
        listed(&s, true),
        [(
            1,
            vec!["opted out of text messages: remind by phone".to_string()]
        )]
    );
    s.record_call(1, CallOutcome::Reached, None, "staff:asha", at(60))
        .expect("call");
    assert_eq!(listed(&s, true), []);
}

#[test]
fn stats_group_each_appointment_once_by_the_channel_of_its_last_accepted_reminder() {
    let (_dir, s) = store();
    // Priya: WhatsApp, read, confirmed. Rohan: WhatsApp failed, the text delivered, no-show.
    // Sneha: nothing reached her.
    message(&s, 1, "day-before", "whatsapp", "read", "read_at = 1");
    let wa = message(&s, 2, "day-before", "whatsapp", "failed", "failed_at = 1");
    message(
        &s,
        2,
        "day-before",
        "sms",
        "delivered",
        &format!("fallback_of = {wa}"),
    );
    s.conn
        .execute_batch(
            "UPDATE appointments SET response = 'confirmed' WHERE id = 1;
             UPDATE appointments SET status = 'no_show' WHERE id = 2;",
        )
        .expect("outcomes");
    let st = s
        .stats(Some("mumbai"), at(0), at(2 * 86400))
        .expect("stats");
    let by = |c: Option<&str>| {
        st.per_channel
            .iter()
            .find(|g| g.channel.as_deref() == c)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        st.per_channel
            .iter()
            .map(|g| g.channel.as_deref())
            .collect::<Vec<_>>(),
        [Some("whatsapp"), Some("sms"), None]
    );
    let (wa, sms, none) = (by(Some("whatsapp")), by(Some("sms")), by(None));
    assert_eq!(
        (
            wa.appointments,
            wa.confirmed,
            wa.no_show,
            wa.sent,
            wa.delivered,
            wa.failed
        ),
        (1, 1, 0, 1, 1, 1)
    );
    assert_eq!(
        (
            sms.appointments,
            sms.confirmed,
            sms.no_show,
            sms.sent,
            sms.delivered,
            sms.failed
        ),
        (1, 0, 1, 1, 1, 0)
    );
    assert_eq!((none.appointments, none.sent), (1, 0));
    let sum = |f: fn(&ChannelStats) -> i64| st.per_channel.iter().map(f).sum::<i64>();
    assert_eq!(
        (
            sum(|g| g.appointments),
            sum(|g| g.confirmed),
            sum(|g| g.no_show)
        ),
        (st.appointments, st.confirmed, st.no_shows)
    );
    assert_eq!(
        (sum(|g| g.sent), sum(|g| g.delivered), sum(|g| g.failed)),
        (
            st.reminders_sent,
            st.reminders_delivered,
            st.reminders_failed
        )
    );
    // The rule groups are unchanged by channels: both reminded appointments under one rule.
    assert_eq!(
        st.per_rule
            .iter()
            .map(|g| (g.rule.as_deref(), g.appointments))
            .collect::<Vec<_>>(),
        [(Some("day-before"), 2), (None, 1)]
    );
    assert_eq!((st.reminded, st.no_show_unconfirmed), (2, 1));
}

#[test]
fn the_board_says_which_channel_the_last_message_took_and_what_the_number_taught_us() {
    let (_dir, s) = store();
    let wa = message(
        &s,
        1,
        "day-before",
        "whatsapp",
        "failed",
        "last_error_code = 131026",
    );
    message(
        &s,
        1,
        "day-before",
        "sms",
        "pending",
        &format!("fallback_of = {wa}, request_at = NULL"),
    );
    s.conn
        .execute_batch(&format!(
            "INSERT INTO numbers (phone, sms_only_since, sms_only_until, updated_at)
               VALUES ('+919876543210', {T0}, {T0} + 7776000, {T0});
             UPDATE patients SET channel = 'none' WHERE id = 2;"
        ))
        .expect("learned");
    let rows = s.board("mumbai", at(0), at(2 * 86400)).expect("board");
    let m = rows[0].last_message.clone().expect("message");
    assert_eq!(
        (
            m.channel.as_str(),
            m.state.as_str(),
            m.replaced_by.as_deref()
        ),
        ("whatsapp", "failed", Some("pending"))
    );
    assert_eq!(rows[0].sms_only_until, Some(at(7_776_000)));
    assert_eq!(rows[1].channel.as_deref(), Some("none"));
    assert_eq!(
        (rows[1].sms_only_until, rows[1].sms_opted_out),
        (None, false)
    );
}
