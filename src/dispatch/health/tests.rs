//! Tests of what Meta's template and account events mean for sending, and of the 2026 error
//! codes.
use super::*;
use crate::model::Recipient;
use crate::phone::E164;
use crate::store::{Response, Status};
use crate::whatsapp::SendError;

fn utc(s: &str) -> DateTime<Utc> {
    crate::time::parse_instant(s).expect("instant")
}

fn row() -> DueRow {
    DueRow {
        id: 7,
        kind: Kind::Reminder,
        rule: "same-day".into(),
        template: Some("reminder".into()),
        slot_start: utc("2026-11-26T04:30:00Z"),
        send_at: utc("2026-11-26T02:30:00Z"),
        latest_at: utc("2026-11-26T04:00:00Z"),
        attempts: 0,
        reason: None,
        appointment_id: "A1".into(),
        clinic: "mumbai".into(),
        starts_at: utc("2026-11-26T04:30:00Z"),
        status: Status::Booked,
        cancelled_by: None,
        response: Response::None,
        provider: None,
        patient_name: "Aarav Sharma".into(),
        phone: E164::from_stored("+919820012345".into()),
        language: "en".into(),
        opted_out: false,
        last_import_at: Some(utc("2026-11-25T10:00:00Z")),
        params: None,
        channel: Channel::WhatsApp,
        recipient: Recipient::Patient,
        contact_name: None,
        sms_opted_out: false,
        fallback_error: None,
        offer: None,
        epoch: 1,
    }
}

/// The shipped config without SMS, so that nothing but an alternate can stand in.
fn config() -> Config {
    let mut c = Config::example().expect("the shipped reminders.toml is valid");
    c.sms = None;
    c
}

fn health(status: Option<&str>, category: Option<&str>, language: &str) -> TemplateHealth {
    TemplateHealth {
        waba_id: String::new(),
        name: "appointment_reminder".into(),
        language: language.into(),
        status: status.map(str::to_string),
        quality: None,
        category: category.map(str::to_string),
        impending_category: None,
        category_change_at: None,
        reason: Some("FIRST_PAUSE".into()),
        updated_at: utc("2026-11-26T01:00:00Z"),
    }
}

fn with(t: TemplateHealth) -> Health {
    Health {
        templates: vec![t],
        accounts: Vec::new(),
    }
}

#[test]
fn a_paused_template_holds_with_its_reason_and_approval_releases() {
    let c = config();
    let now = utc("2026-11-26T02:31:00Z");
    let paused = with(health(Some("PAUSED"), None, "en"));
    let v = overlay(Verdict::Send, &c, &paused, &row(), now);
    let Verdict::Hold(at, reason) = v else {
        panic!("held: {v:?}")
    };
    assert_eq!(at, now + RECHECK);
    assert!(reason.starts_with(TEMPLATE_HOLD), "{reason}");
    assert!(
        reason.contains("paused the WhatsApp template “appointment_reminder” (en) (FIRST_PAUSE)"),
        "{reason}"
    );
    // Another language's pause does not concern an English reminder.
    let hindi = with(health(Some("PAUSED"), None, "hi"));
    assert_eq!(
        overlay(Verdict::Send, &c, &hindi, &row(), now),
        Verdict::Send
    );
    for back in ["REINSTATED", "APPROVED", "FLAGGED"] {
        let h = with(health(Some(back), None, "en"));
        assert_eq!(
            overlay(Verdict::Send, &c, &h, &row(), now),
            Verdict::Send,
            "{back}"
        );
    }
    // A skip stays a skip: a cancelled appointment is not held.
    let skip = Verdict::Skip("cancelled".into());
    assert_eq!(overlay(skip.clone(), &c, &paused, &row(), now), skip);
}

#[test]
fn a_template_paused_in_one_business_account_holds_only_that_accounts_numbers() {
    // New York sends from brand-b, a number in business account 400000000000004.
    let mut c = two_accounts();
    c.sms = None;
    let now = utc("2026-11-26T02:31:00Z");
    let paused = with(TemplateHealth {
        waba_id: "400000000000004".into(),
        ..health(Some("PAUSED"), None, "en")
    });
    assert_eq!(
        overlay(Verdict::Send, &c, &paused, &row(), now),
        Verdict::Send,
        "Mumbai's number is in the other account"
    );
    let nyc = DueRow {
        clinic: "nyc".into(),
        ..row()
    };
    assert!(
        matches!(
            overlay(Verdict::Send, &c, &paused, &nyc, now),
            Verdict::Hold(..)
        ),
        "New York's number is in the account Meta paused it in"
    );
    // An event that named no account concerns every account.
    let everywhere = with(health(Some("PAUSED"), None, "en"));
    assert!(matches!(
        overlay(Verdict::Send, &c, &everywhere, &row(), now),
        Verdict::Hold(..)
    ));
}

/// The shipped config with New York on brand-b, a number in business account 400000000000004.
fn two_accounts() -> Config {
    let text = include_str!("../../../reminders.toml")
        .replacen(
            "[[rules]]",
            "[whatsapp.numbers.brand-b]\nphone_number_id = \"300000000000003\"\nwaba_id = \"400000000000004\"\n\n[[rules]]",
            1,
        )
        .replacen("[clinics.nyc]\n", "[clinics.nyc]\nwhatsapp_number = \"brand-b\"\n", 1);
    Config::from_toml(&text, std::path::Path::new("r.toml")).expect("config")
}

#[test]
fn the_desk_names_the_clinics_a_restricted_account_holds_and_an_unknown_account_holds_all() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(&dir.path().join("d.db")).expect("open");
    let c = two_accounts();
    let now = utc("2026-11-26T02:31:00Z");
    store
        .set_account_health(
            "400000000000004",
            "DISABLED_UPDATE",
            true,
            "disabled",
            None,
            None,
            now,
        )
        .expect("set");
    let holds = desk_holds(&store, &c, now).expect("holds");
    let clinics = holds.iter().find_map(|h| match h {
        crate::jobs::Hold::AccountBlocked { clinics, .. } => Some(clinics.clone()),
        _ => None,
    });
    assert_eq!(
        clinics,
        Some(vec!["Hudson Street Medical, New York".to_string()]),
        "{holds:?}"
    );
    // An account none of the numbers names (a waba_id set wrong in the config) is taken to
    // be every number's: a restriction is never ignored.
    store
        .set_account_health(
            "400000000000004",
            "DISABLED_UPDATE",
            false,
            "lifted",
            None,
            None,
            now,
        )
        .expect("set");
    store
        .set_account_health(
            "999",
            "ACCOUNT_RESTRICTION",
            true,
            "restricted",
            None,
            None,
            now,
        )
        .expect("set");
    let health = Health::read(&store, &c).expect("read");
    assert!(health.account_block_for("102290129340398", now).is_some());
    assert!(health.account_block_for("400000000000004", now).is_some());
    let holds = desk_holds(&store, &c, now).expect("holds");
    assert!(
        holds.iter().any(
            |h| matches!(h, crate::jobs::Hold::AccountBlocked { clinics, .. } if clinics.is_empty())
        ),
        "{holds:?}"
    );
}

#[test]
fn marketing_holds_and_an_announced_change_only_warns() {
    let c = config();
    let now = utc("2026-11-26T02:31:00Z");
    let marketing = with(health(Some("APPROVED"), Some("MARKETING"), ""));
    assert!(matches!(
        overlay(Verdict::Send, &c, &marketing, &row(), now),
        Verdict::Hold(_, r) if r.contains("MARKETING")
    ));
    let utility = with(health(Some("APPROVED"), Some("UTILITY"), ""));
    assert_eq!(
        overlay(Verdict::Send, &c, &utility, &row(), now),
        Verdict::Send
    );
    let mut soon = health(None, None, "en");
    soon.impending_category = Some("MARKETING".into());
    soon.category_change_at = Some(utc("2026-12-01T00:00:00Z"));
    assert_eq!(unusable(&soon), None);
    assert!(warning(&soon).is_some_and(|w| w.contains("as MARKETING on 2026-12-01")));
    assert_eq!(
        overlay(Verdict::Send, &c, &with(soon), &row(), now),
        Verdict::Send
    );
}

#[test]
fn an_alternate_or_an_sms_stands_in_where_configured() {
    let mut c = config();
    let paused = with(health(Some("PAUSED"), None, "en"));
    c.templates.get_mut("reminder").expect("reminder").alternate = Some("booked".into());
    assert_eq!(plan(&c, &paused, &row()), Plan::Alternate("booked".into()));
    // An alternate Meta stopped too is no help.
    let mut both = paused.clone();
    let mut booked = health(Some("DISABLED"), None, "");
    booked.name = "appointment_booked".into();
    both.templates.push(booked);
    assert!(matches!(plan(&c, &both, &row()), Plan::Hold(_)));
    // With the shipped SMS set-up, the clinic's fallback takes over.
    let shipped = Config::example().expect("config");
    assert!(matches!(
        plan(&shipped, &paused, &row()),
        Plan::FallBack(132_015, why) if why.contains("paused")
    ));
    let disabled = with(health(Some("DISABLED"), None, "en"));
    assert!(matches!(
        plan(&shipped, &disabled, &row()),
        Plan::FallBack(132_016, _)
    ));
}

#[test]
fn a_blocked_account_stops_until_lifted_or_its_end() {
    let mut h = Health::default();
    let now = utc("2026-11-26T02:31:00Z");
    assert_eq!(h.account_block(now), None);
    h.accounts = vec![AccountHealth {
        waba_id: String::new(),
        event: "ACCOUNT_RESTRICTION".into(),
        blocked: true,
        reason: Some("restricted".into()),
        until: Some(utc("2026-11-26T06:00:00Z")),
        updated_at: now,
    }];
    assert!(
        h.account_block(now)
            .is_some_and(|w| w.contains("restricted"))
    );
    // An event that named no account stops every account's numbers.
    assert!(h.account_block_for("102290129340398", now).is_some());
    assert_eq!(h.account_block(utc("2026-11-26T06:00:01Z")), None);
}

#[test]
fn a_restricted_business_account_stops_its_own_numbers_only() {
    let now = utc("2026-11-26T02:31:00Z");
    let h = Health {
        accounts: vec![AccountHealth {
            waba_id: "400000000000004".into(),
            event: "DISABLED_UPDATE".into(),
            blocked: true,
            reason: Some("Meta disabled the WhatsApp Business account".into()),
            until: None,
            updated_at: now,
        }],
        ..Health::default()
    };
    let why = h
        .account_block_for("400000000000004", now)
        .expect("blocked");
    assert!(
        why.contains("from business account 400000000000004") && why.contains("disabled"),
        "{why}"
    );
    assert_eq!(h.account_block_for("102290129340398", now), None);
    assert!(h.account_block(now).is_some(), "the desk still says so");
}

#[test]
fn the_2026_error_codes() {
    let c = Config::example().expect("config");
    let wa = c.whatsapp.clone().expect("whatsapp");
    let now = utc("2026-11-26T02:31:00Z");
    let api = |code| SendError::Api {
        http_status: 400,
        code,
        title: "t".into(),
        details: None,
    };
    // Blocked by the patient: terminal, on the call list, and SMS may stand in.
    assert!(matches!(
        super::super::outcome(&api(130_403), &row(), &wa, now, 0.5),
        Outcome::Failed {
            needs_staff: Some(_),
            ..
        }
    ));
    assert!(super::super::FALLBACK_CODES.contains(&130_403));
    assert!(fallback_for(&c, 130_403, now).sms_only_until.is_some());
    // A template still syncing: ten minutes.
    assert_eq!(
        super::super::outcome(&api(134_101), &row(), &wa, now, 0.5),
        Outcome::Retry {
            at: now + Duration::minutes(10),
            code: Some(134_101),
            error: api(134_101).to_string()
        }
    );
    // Terminal, with an alert.
    for code in [131_049, 139_200, 2_388_019, 136_123] {
        assert!(
            matches!(
                super::super::outcome(&api(code), &row(), &wa, now, 0.5),
                Outcome::Failed { .. }
            ),
            "{code}"
        );
        assert!(is_alert(code), "{code}");
    }
    for code in [131_026, 130_429, 132_015, 100, 190] {
        assert!(!is_alert(code), "{code}");
    }
}

#[test]
fn ttl_advice_compares_meta_the_config_and_the_rules() {
    let mut c = Config::example().expect("config");
    // Meta has none: a reminder could be retried for 30 days.
    let w = ttl_warnings(&c, "reminder", None);
    assert!(w.iter().any(|w| w.contains("no time to live")), "{w:?}");
    // Six hours is longer than the same-day rule's window (2h before).
    let w = ttl_warnings(&c, "reminder", Some(6 * 3600));
    assert!(
        w.iter().any(|w| w.contains("longer than rule same-day")),
        "{w:?}"
    );
    assert!(!w.iter().any(|w| w.contains("day-before")), "{w:?}");
    c.templates.get_mut("reminder").expect("reminder").ttl = Some(Duration::hours(1));
    let w = ttl_warnings(&c, "reminder", Some(3600));
    assert!(w.is_empty(), "{w:?}");
    let w = ttl_warnings(&c, "reminder", Some(1800));
    assert!(
        w.iter().any(|w| w.contains("the config's ttl is 1h")),
        "{w:?}"
    );
}
