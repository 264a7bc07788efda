//! The Waitlist page: who waits for an earlier slot (add one by form), the freed slots with
//! their rounds, every offer with its state and time, a form to open a slot by hand, and the
//! figures. Both forms are audited and end in post/redirect/get.

use chrono::{Duration, NaiveTime};

use super::{
    CsrfForm, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff, State,
    StatusCode, html, page_day, parse_day, urlencode, views,
};
use crate::store::NewEntry;
use crate::waitlist::csv::{parse_band, parse_days};
use views::{AddForm, OpenForm, WaitlistData, WaitlistForms};

/// How far back the page lists openings, offers and figures.
const SHOWN_DAYS: i64 = 30;
/// Most offers listed.
const OFFERS_SHOWN: usize = 200;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct WaitlistQuery {
    clinic: Option<String>,
    /// What the last form did: `added` or `opened`.
    done: Option<String>,
}

/// `GET /desk/waitlist`.
pub(in crate::desk) async fn waitlist(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<WaitlistQuery>,
) -> Result<Response, Response> {
    let notice = match q.done.as_deref() {
        Some("added") => Some("The patient is on the waitlist."),
        Some("opened") => Some("The slot is open: offers go out to suitable patients shortly."),
        _ => None,
    };
    show(
        &state,
        &staff,
        q.clinic.as_deref(),
        WaitlistForms::default(),
        notice,
    )
    .await
}

async fn show(
    state: &DeskState,
    staff: &Staff,
    clinic: Option<&str>,
    forms: WaitlistForms,
    notice: Option<&str>,
) -> Result<Response, Response> {
    let (config, clinic, today) = page_day(state, staff, clinic, None)?;
    let now = state.clock.now();
    let since = now - Duration::days(SHOWN_DAYS);
    let key = clinic.key.clone();
    let data = state
        .db(move |s| {
            Ok(WaitlistData {
                entries: s.waitlist_entries(Some(&key), true)?,
                openings: s.openings_since(&key, since)?,
                offers: s.waitlist_offers(&key, since, OFFERS_SHOWN)?,
                figures: s.waitlist_figures(&key, since)?,
            })
        })
        .await?;
    let failed = forms.error.is_some();
    let page = views::waitlist_page(
        &staff.session,
        &config,
        &clinic,
        &data,
        &forms,
        notice,
        today,
    );
    Ok(if failed {
        (StatusCode::BAD_REQUEST, page).into_response()
    } else {
        html(page)
    })
}

fn done(clinic: &str, what: &str) -> Response {
    Redirect::to(&format!(
        "/desk/waitlist?clinic={}&done={what}",
        urlencode(clinic)
    ))
    .into_response()
}

/// `POST /desk/waitlist/add`: one patient on the waitlist (audited).
pub(in crate::desk) async fn add_entry(
    State(state): State<DeskState>,
    CsrfForm(staff, form): CsrfForm<AddForm>,
) -> Result<Response, Response> {
    let config = state.config();
    let Some(clinic) = config.clinic(&form.clinic).cloned() else {
        return show(&state, &staff, None, WaitlistForms::default(), None).await;
    };
    let today = state
        .clock
        .now()
        .with_timezone(&clinic.time_zone)
        .date_naive();
    let fail = |why: String| WaitlistForms {
        add: form.clone(),
        error: Some(("add", why)),
        ..WaitlistForms::default()
    };
    let entry = (|| {
        let patient = form.patient.trim();
        if patient.is_empty() {
            return Err("Give the patient's number as the schedule shows it.".to_string());
        }
        let earliest = parse_day(Some(&form.earliest))?.unwrap_or(today);
        let latest = parse_day(Some(&form.latest))?;
        if latest.is_some_and(|l| l < earliest) {
            return Err("The last date is before the first date: swap them.".into());
        }
        let max_offers = match form.max_offers.trim() {
            "" => 3,
            m => m
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .ok_or("Most offers must be a number from 1 to 50.")?,
        };
        Ok(NewEntry {
            clinic: clinic.key.clone(),
            patient: patient.to_string(),
            provider: Some(form.provider.trim().to_string()).filter(|p| !p.is_empty()),
            earliest,
            latest,
            days: parse_days(&form.days)?,
            band: parse_band(&form.time_band)?,
            expires_at: None,
            max_offers,
        })
    })();
    let entry = match entry {
        Ok(e) => e,
        Err(why) => return show(&state, &staff, Some(&clinic.key), fail(why), None).await,
    };
    let (actor, now) = (staff.actor(), state.clock.now());
    state
        .db(move |s| s.add_waitlist_entry(&entry, &actor, now))
        .await?;
    Ok(done(&clinic.key, "added"))
}

/// `POST /desk/waitlist/open`: staff open a slot by hand (audited); offers follow.
pub(in crate::desk) async fn open_slot(
    State(state): State<DeskState>,
    CsrfForm(staff, form): CsrfForm<OpenForm>,
) -> Result<Response, Response> {
    let config = state.config();
    let Some(clinic) = config.clinic(&form.clinic).cloned() else {
        return show(&state, &staff, None, WaitlistForms::default(), None).await;
    };
    let now = state.clock.now();
    let slot = (|| {
        let date = parse_day(Some(&form.date))?.ok_or("Choose the slot's date.")?;
        let time = NaiveTime::parse_from_str(form.time.trim(), "%H:%M")
            .map_err(|_| "Give the slot's time as HH:MM, for example 10:30.".to_string())?;
        let duration = match form.duration.trim() {
            "" => clinic.default_duration_min,
            d => d
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=24 * 60).contains(n))
                .ok_or("The length must be a number of minutes, for example 15.")?,
        };
        let starts = crate::time::local_to_utc(clinic.time_zone, date, time).map_err(|_| {
            "That time does not exist on that day (the clocks change); choose another.".to_string()
        })?;
        if starts <= now {
            return Err("That time has passed: choose a slot still to come.".to_string());
        }
        Ok((starts, duration))
    })();
    let slot = match slot {
        Ok(s) => s,
        Err(why) => {
            let forms = WaitlistForms {
                open: form.clone(),
                error: Some(("open", why)),
                ..WaitlistForms::default()
            };
            return show(&state, &staff, Some(&clinic.key), forms, None).await;
        }
    };
    let provider = Some(form.provider.trim().to_string()).filter(|p| !p.is_empty());
    let (actor, key) = (staff.actor(), clinic.key.clone());
    state
        .db(move |s| s.open_slot_by_staff(&key, slot, provider.as_deref(), &actor, now))
        .await?;
    Ok(done(&clinic.key, "opened"))
}
