//! A patient asks the clinic to erase her data: the administrator finds her, presses Erase
//! data on her page, reads what goes and what stays, ticks the box for her upcoming visit and
//! erases; her page then says so, and neither her name nor her number is shown anywhere.

use super::*;
use crate::common::csv;

#[tokio::test(flavor = "multi_thread")]
async fn the_administrator_erases_a_patients_data_after_reading_what_goes_and_what_stays() {
    if !browser_available() {
        return;
    }
    let env = Env::new();
    add_user(&env);
    env.run(&["user", "role", USER, "admin"]).expect(0);
    let schedule = env.file(
        "later.csv",
        csv(&[
            "MUM-8001,P-3001,Priya Patil,+91 98765 43210,mr,2099-01-15,10:00,15,Dr. Mehta,mumbai,booked",
            "MUM-8002,P-3002,Aarav Sharma,98200 12345,en,2099-01-15,10:30,15,Dr. Mehta,mumbai,booked",
        ]),
    );
    env.run(&["import", schedule.to_str().expect("utf-8 path")])
        .expect(0);
    let id = env.count("SELECT id FROM patients WHERE external_id = 'P-3001'");

    let (_server, base) = start_server(&env).await;
    let (driver, client, chromedriver) = start_browser(&env).await;
    let b = Browser {
        client,
        base,
        shots: screenshot_dir(),
        chromedriver,
    };
    b.goto(&format!("/desk/patient?id={id}")).await;
    b.heading("Sign in").await;
    sign_in_as(&b, USER, PASSWORD).await;
    b.heading("Priya Patil").await;
    b.find("//a[normalize-space() = 'Erase data…']")
        .await
        .click()
        .await
        .expect("press Erase data");
    b.heading("Erase the data of Priya Patil?").await;
    let page = b.body_text().await;
    assert!(
        page.contains("What is erased") && page.contains("What stays"),
        "{page}"
    );
    assert!(
        page.contains("The patient has an upcoming appointment."),
        "{page}"
    );
    b.shot("privacy-01-erase-asks.png").await;
    b.field("Cancel the upcoming appointments and erase")
        .await
        .click()
        .await
        .expect("tick the box");
    b.find("//button[starts-with(normalize-space(), 'Erase this patient')]")
        .await
        .click()
        .await
        .expect("erase");
    b.heading("Erased patient").await;
    let page = b.body_text().await;
    assert!(page.contains("personal data was erased on"), "{page}");
    assert!(!page.contains("Priya") && !page.contains("3210"), "{page}");
    assert!(
        !b.path_and_query().await.contains("erase"),
        "the page after erasing is a GET of the patient's page"
    );
    b.shot("privacy-02-erased.png").await;
    assert_eq!(
        env.count("SELECT count(*) FROM erasures WHERE erased_by = 'staff:asha' AND forced = 1"),
        1
    );

    match b.console_errors().await {
        Some(errors) => assert!(errors.is_empty(), "console errors: {errors:#?}"),
        None => println!("chromedriver gave no browser log; console not checked"),
    }
    b.client.close().await.expect("end the browser session");
    drop(driver);
}
