//! A patient's data on the desk: an administrator exports it or erases it from the patient's
//! page (asked first, audited); staff without the admin role get 403 and change nothing.

use crate::common::csv;
use crate::desk_harness::{Browser, Desk};

const STAFF: (&str, &str) = ("asha", "front-desk-password");
const ADMIN: (&str, &str) = ("meera", "clinic-admin-password");

/// The desk with Priya (a visit next year) and Aarav, a staff account and an admin account.
async fn start() -> (Desk, i64) {
    let d = Desk::options()
        .user(STAFF.0, STAFF.1)
        .user(ADMIN.0, ADMIN.1)
        .start()
        .await;
    d.env.run(&["user", "role", ADMIN.0, "admin"]).expect(0);
    d.env
        .import(
            "s.csv",
            &csv(&[
                "A-1,P-1,Priya Patil,+91 98765 43210,mr,2099-01-15,10:00,15,Dr. Mehta,mumbai,booked",
                "A-2,P-2,Aarav Sharma,98200 12345,en,2099-01-15,10:30,15,Dr. Mehta,mumbai,booked",
            ]),
            &[],
        )
        .expect(0);
    let id = d.id("SELECT id FROM patients WHERE external_id = 'P-1'");
    (d, id)
}

async fn as_user(d: &Desk, who: (&str, &str)) -> Browser {
    d.signed_in(who.0, who.1).await
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_without_the_admin_role_get_403_on_export_and_erase() {
    let (d, id) = start().await;
    let b = as_user(&d, STAFF).await;
    let page = b.get(&format!("/desk/patient?id={id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("Export data"), "{}", page.text());
    let patient = id.to_string();
    let export = b
        .post(
            "/desk/patient/export",
            &[("csrf", &b.csrf), ("patient", &patient)],
        )
        .await;
    assert_eq!(export.status, 403);
    assert!(
        export.text().contains("Only an administrator can do this"),
        "{}",
        export.text()
    );
    assert_eq!(
        b.get(&format!("/desk/patient/erase?id={id}")).await.status,
        403
    );
    let erase = b
        .post(
            "/desk/patient/erase",
            &[("csrf", &b.csrf), ("patient", &patient), ("force", "1")],
        )
        .await;
    assert_eq!(erase.status, 403);
    assert_eq!(
        d.count("SELECT count(*) FROM patients WHERE name = 'Priya Patil'"),
        1
    );
    assert_eq!(d.count("SELECT count(*) FROM erasures"), 0);
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action IN ('patient_exported', 'patient_erased')"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_exports_then_erases_after_being_asked_and_both_are_audited() {
    let (d, id) = start().await;
    let b = as_user(&d, ADMIN).await;
    let page = b.get(&format!("/desk/patient?id={id}")).await;
    assert!(
        page.text().contains("This patient's data"),
        "{}",
        page.text()
    );
    let patient = id.to_string();

    let export = b
        .post(
            "/desk/patient/export",
            &[("csrf", &b.csrf), ("patient", &patient)],
        )
        .await;
    assert_eq!(export.status, 200, "{}", export.body);
    assert!(
        export
            .header(&reqwest::header::CONTENT_DISPOSITION)
            .contains("attachment; filename=\"patient-mumbai-P-1.json\""),
    );
    let doc: serde_json::Value = serde_json::from_str(&export.body).expect("JSON");
    assert_eq!(doc["patient"]["name"], "Priya Patil");
    assert_eq!(doc["appointments"][0]["external_id"], "A-1");
    assert!(!export.body.contains("Aarav"));
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'patient_exported' AND actor = 'staff:meera'"),
        1
    );

    // Asked first: what goes, what stays, and the upcoming visit.
    let ask = b.get(&format!("/desk/patient/erase?id={id}")).await;
    assert_eq!(ask.status, 200);
    let text = ask.text();
    assert!(text.contains("Erase the data of Priya Patil?"), "{text}");
    assert!(
        text.contains("The patient has an upcoming appointment."),
        "{text}"
    );
    // Without ticking the box: refused in words, nothing erased.
    let refused = b
        .post(
            "/desk/patient/erase",
            &[("csrf", &b.csrf), ("patient", &patient)],
        )
        .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused
            .text()
            .contains("The patient has 1 upcoming appointment"),
        "{}",
        refused.text()
    );
    assert_eq!(d.count("SELECT count(*) FROM erasures"), 0);

    let done = b
        .post_then_get(
            "/desk/patient/erase",
            &[("csrf", &b.csrf), ("patient", &patient), ("force", "1")],
            &format!("/desk/patient?id={id}"),
        )
        .await;
    let text = done.text();
    assert!(text.contains("Erased patient"), "{text}");
    assert!(text.contains("personal data was erased on"), "{text}");
    assert!(!text.contains("Priya"), "{text}");
    assert!(!text.contains("Export data"), "{text}");
    assert_eq!(
        d.count("SELECT count(*) FROM erasures WHERE erased_by = 'staff:meera' AND forced = 1"),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM patients WHERE name = 'Aarav Sharma'"),
        1
    );
    // The day board names the erased patient's row in words, not with a blank.
    let day = b
        .get("/desk/day?clinic=mumbai&date=2099-01-15")
        .await
        .text();
    assert!(day.contains("Erased patient"), "{day}");
    assert!(
        day.contains("Aarav Sharma") && !day.contains("Priya"),
        "{day}"
    );
    // The confirm page of an erased patient goes back to their page.
    let again = b.get(&format!("/desk/patient/erase?id={id}")).await;
    assert_eq!(again.status, 303);
}
