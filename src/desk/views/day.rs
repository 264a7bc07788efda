//! The day board: one clinic's appointments on one local day.

use super::{
    BoardRow, Clinic, Config, Markup, NaiveDate, SignedIn, day_picker, html, local, page,
    phone_cell, response_word, status_word,
};

/// The day board.
pub fn day_page(
    session: &SignedIn,
    config: &Config,
    clinic: &Clinic,
    day: NaiveDate,
    rows: &[BoardRow],
    revealed: Option<i64>,
) -> Markup {
    let zone = clinic.time_zone;
    let title = format!("{} — {}", clinic.display_name, day.format("%A %-d %B %Y"));
    let confirmed = rows.iter().filter(|r| r.response == "confirmed").count();
    let cancelled = rows.iter().filter(|r| r.status == "cancelled").count();
    page(
        &title,
        Some(session),
        "Day",
        &html! {
            (day_picker(config, clinic, day, "/desk/day"))
            p.summary { (rows.len()) " appointment(s): " (confirmed) " confirmed, " (cancelled) " cancelled. Times are " (zone.name()) "." }
            @if rows.is_empty() {
                p.notice { "No appointments on this day. Upload the schedule on the Upload page." }
            } @else {
                div.scroll {
                    table {
                        caption.visually-hidden { "Appointments in time order" }
                        thead { tr { th scope="col" { "Time" } th scope="col" { "Patient" } th scope="col" { "Phone" } th scope="col" { "With" } th scope="col" { "Schedule" } th scope="col" { "Patient's answer" } th scope="col" { "Last message" } th scope="col" { "Last note" } } }
                        tbody {
                            @for r in rows {
                                tr.(format!("status-{}", r.status)) {
                                    td { (local(r.starts_at, zone, "%H:%M")) }
                                    td { (r.patient_name) small { " (" (r.appointment_id) ")" } }
                                    td { (phone_cell(session, clinic, day, r.id, &r.phone, revealed == Some(r.id), "day")) }
                                    td { (r.provider.as_deref().unwrap_or("")) }
                                    td { span.badge.(format!("s-{}", r.status)) { (status_word(&r.status)) } }
                                    td {
                                        span.badge.(format!("r-{}", r.response)) { (response_word(&r.response)) }
                                        @if r.opted_out { " " span.badge.warn { "opted out" } }
                                    }
                                    td { (r.last_message.as_deref().unwrap_or("none yet")) }
                                    td { (r.last_note.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::views::Notice;
    use chrono::{DateTime, Utc};

    fn row(id: i64, name: &str, phone: &str) -> BoardRow {
        BoardRow {
            id,
            appointment_id: format!("A-{id}"),
            starts_at: DateTime::parse_from_rfc3339("2026-11-26T03:30:00Z")
                .expect("instant")
                .with_timezone(&Utc),
            duration_min: 15,
            patient_name: name.into(),
            phone: phone.into(),
            language: "en".into(),
            provider: None,
            status: "booked".into(),
            response: "none".into(),
            opted_out: false,
            last_message: Some("delivered".into()),
            last_note: None,
        }
    }

    #[test]
    fn notices_are_known_keys_only() {
        for n in Notice::ALL {
            assert_eq!(Notice::from_key(n.key()), Some(n));
        }
        assert_eq!(Notice::from_key("Call 0800 555 0100"), None);
        assert_eq!(Notice::from_key(""), None);
    }

    #[test]
    fn the_board_escapes_names_masks_numbers_and_reveals_only_one() {
        let config = Config::example().expect("shipped config");
        let clinic = config.clinic("mumbai").expect("mumbai").clone();
        let session = SignedIn::from(crate::store::Session {
            user_id: 1,
            user: "asha".into(),
            csrf: "c".repeat(64),
        });
        let rows = [
            row(1, "<script>alert(1)</script>", "+919820012345"),
            row(2, "Priya Patil", "+919876543210"),
        ];
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let page = day_page(&session, &config, &clinic, day, &rows, Some(2)).into_string();
        assert!(!page.contains("<script>alert"), "names are escaped");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("+91******2345") && !page.contains("+919820012345"));
        assert!(page.contains("+919876543210"), "the revealed one is whole");
        assert!(page.contains("09:00"), "local time in Asia/Kolkata");
        assert_eq!(
            page.matches(&session.csrf).count(),
            2,
            "sign-out and one reveal form"
        );
    }
}
