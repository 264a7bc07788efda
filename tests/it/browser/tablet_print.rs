//! Tablets, 200% zoom and paper: the day board keeps time, patient and answer in view at 800
//! and 640 CSS pixels, and the day list and the call sheet print on A4 with every column and
//! no buttons, forms or navigation. Screenshots of each are saved beside the other tests'.

use super::{
    Browser, Duration, Env, Instant, PASSWORD, USER, Value, add_user, browser_available, json,
    repo_file, screenshot_dir, sign_in_as, start_browser, start_server,
};

/// The day board's columns a receptionist must see without scrolling sideways.
const MUST_SEE: [&str; 3] = ["Time", "Patient", "Answer"];
/// An A4 page's width at the 96 pixels per inch browsers lay print out at.
const A4_PX: u32 = 794;

/// Signs in through the form, as staff do.
async fn sign_in(b: &Browser) {
    b.goto("/desk/login").await;
    sign_in_as(b, USER, PASSWORD).await;
}

/// The right edge of each named column's header cell in the page's main table, and the
/// window's layout width, in CSS pixels (-1 for a column that is not there).
async fn column_edges(b: &Browser, names: &[&str]) -> (Vec<i64>, i64) {
    let v = b
        .client
        .execute(
            "const ths = [...document.querySelectorAll('main table thead th')];
             const edges = arguments[0].map(n => {
                 const th = ths.find(t => t.textContent.trim() === n);
                 return th ? Math.round(th.getBoundingClientRect().right) : -1;
             });
             return [edges, document.documentElement.clientWidth];",
            vec![json!(names)],
        )
        .await
        .expect("measure the columns");
    let edges = v[0]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e.as_i64().expect("edge"))
        .collect();
    (edges, v[1].as_i64().expect("width"))
}

/// Lays the page out for print (Chromium's media emulation, through chromedriver).
async fn emulate_print(b: &Browser, on: bool) {
    let id = b
        .client
        .session_id()
        .await
        .expect("session id")
        .expect("a session");
    let r = reqwest::Client::new()
        .post(format!("{}/session/{id}/goog/cdp/execute", b.chromedriver))
        .json(&json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "media": if on { "print" } else { "" } },
        }))
        .send()
        .await
        .expect("chromedriver answers");
    assert!(r.status().is_success(), "print emulation: {}", r.status());
}

/// What would print that should not: each visible button, form control, navigation link or
/// sign-out form, as "tag: text"; how far the page is wider than its paper; and what sticks
/// out past it.
async fn printed_extras(b: &Browser) -> (Vec<String>, i64, Value) {
    let v: Value = b
        .client
        .execute(
            "const shown = e => { const s = getComputedStyle(e); return s.display !== 'none' && s.visibility !== 'hidden' && e.getClientRects().length > 0; };
             const extras = [...document.querySelectorAll('button, select, input:not([type=hidden]), nav a, header')]
                 .filter(shown).map(e => e.tagName.toLowerCase() + ': ' + e.textContent.trim().slice(0, 40));
             const width = document.documentElement.clientWidth;
             const wide = [...document.querySelectorAll('main *')].filter(shown)
                 .filter(e => e.getBoundingClientRect().right > width + 1)
                 .map(e => e.tagName.toLowerCase() + '.' + e.className + ' ends at ' + Math.round(e.getBoundingClientRect().right) + ': ' + e.textContent.trim().slice(0, 30));
             return [extras, document.documentElement.scrollWidth - width, wide.slice(0, 8)];",
            vec![],
        )
        .await
        .expect("inspect the printed page");
    let extras = v[0]
        .as_array()
        .expect("extras")
        .iter()
        .map(|e| e.as_str().unwrap_or_default().to_string())
        .collect();
    (extras, v[1].as_i64().expect("overflow"), v[2].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_day_board_fits_a_tablet_and_prints_on_a4() {
    if !browser_available() {
        return;
    }
    let started = Instant::now();
    let env = Env::new();
    add_user(&env);
    let example = repo_file("examples/schedule.csv");
    env.run(&["import", example.to_str().expect("utf-8 path")])
        .expect(0);
    // One patient asked to reschedule, so the call sheet has someone on it.
    env.sql()
        .execute(
            "UPDATE appointments SET response = 'reschedule_requested', response_at = 1764000000 WHERE external_id = 'MUM-1003'",
            (),
        )
        .expect("reschedule requested");
    let (_server, base) = start_server(&env).await;
    let (_driver, client, chromedriver) = start_browser(&env).await;
    let b = Browser {
        client,
        base,
        shots: screenshot_dir(),
        chromedriver,
    };
    sign_in(&b).await;
    let board = "/desk/day?clinic=mumbai&date=2026-11-26";

    // A tablet held upright (800) and a desk PC at 200% zoom (640): time, patient and answer
    // are on screen without scrolling the table sideways.
    for (width, shot) in [(800, "10-tablet-800.png"), (640, "11-zoom-200.png")] {
        b.client
            .set_window_size(width, 1000)
            .await
            .expect("resize the window");
        b.goto(board).await;
        b.heading("Sunrise Family Clinic, Andheri").await;
        let (edges, viewport) = column_edges(&b, &MUST_SEE).await;
        for (name, edge) in MUST_SEE.iter().zip(&edges) {
            assert!(
                (0..=viewport).contains(edge),
                "at {width} px the {name:?} column ends at {edge} px, past the {viewport}-pixel window (or is missing): {edges:?}"
            );
        }
        b.shot(shot).await;
    }

    // Paper: the day list and the call sheet, A4 wide, with nothing to press.
    b.client
        .set_window_size(A4_PX, 1123)
        .await
        .expect("A4 window");
    for (page, heading, shot) in [
        (board, "Sunrise Family Clinic, Andheri", "12-print-day.png"),
        (
            "/desk/follow-ups?clinic=mumbai&date=2026-11-26",
            "Follow-ups",
            "13-print-call-sheet.png",
        ),
    ] {
        b.goto(page).await;
        b.heading(heading).await;
        emulate_print(&b, true).await;
        let (extras, overflow, wide) = printed_extras(&b).await;
        assert!(
            extras.is_empty(),
            "{page} would print buttons or navigation: {extras:#?}"
        );
        assert!(
            overflow <= 0,
            "{page} is {overflow} px wider than A4 when printed; past the edge: {wide:#}"
        );
        let text = b.body_text().await;
        assert!(
            text.contains("Rohan Gupta"),
            "{page} prints the patients: {text}"
        );
        b.shot(shot).await;
        emulate_print(&b, false).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
}
