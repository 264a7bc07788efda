//! The files patients send, on the front desk: the simulator holds a voice note, a signed
//! webhook names it, the reply is stored with its media id, and a signed-in receptionist opens
//! it at `/desk/replies/media` (exactly the bytes, with their type, audited). A file WhatsApp
//! no longer has, a download address on another host and a visitor who is not signed in each
//! get a clear answer, never a 500.

use reminderd::sim::{Reply, Sim, SimConfig, SimNumber};
use reqwest::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};

use crate::common::{Env, csv, sim_config};
use crate::desk_harness::{Browser, Desk};

const TOKEN: &str = "token-for-desk-media-tests";
const SECRET: &str = "app-secret-for-desk-media-tests";
const USER: &str = "asha";
const PASSWORD: &str = "correct horse battery";
/// The patient of the one imported appointment, as WhatsApp writes a sender.
const PATIENT: &str = "919820012345";

/// `reminderd serve` (webhook and desk) pointed at a simulator that posts its webhooks to it.
struct Served {
    desk: Desk,
    sim: Sim,
}

impl std::ops::Deref for Served {
    type Target = Desk;

    fn deref(&self) -> &Desk {
        &self.desk
    }
}

impl Served {
    async fn start() -> Self {
        Self::start_with(|c| c, &[], Vec::new()).await
    }

    /// As [`Served::start`], with `extra` applied to the config, `vars` in the server's
    /// environment and the simulator serving `numbers` too.
    async fn start_with(
        extra: impl FnOnce(String) -> String,
        vars: &[(&str, &str)],
        numbers: Vec<SimNumber>,
    ) -> Self {
        let env = Env::new();
        // The simulator's address goes into the config before the server starts, and the
        // server's webhook address into the simulator's: bind first, serve after.
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the simulator");
        let sim_base = format!("http://{}", sim_listener.local_addr().expect("addr"));
        env.import(
            "day.csv",
            &csv(&[
                "A1,P1,Aarav Sharma,98200 12345,en,2030-12-02,09:00,15,Dr. Mehta,mumbai,booked",
            ]),
            &[],
        )
        .expect(0);
        let desk = Desk::options_on(env)
            .edit(|c| {
                let text = c.replace(
                    "api_base = \"https://graph.facebook.com\"",
                    &format!("api_base = \"{sim_base}\""),
                );
                assert!(text.contains(&sim_base), "the config names the simulator");
                extra(text)
            })
            .user(USER, PASSWORD)
            .var("WHATSAPP_ACCESS_TOKEN", TOKEN)
            .var("WHATSAPP_APP_SECRET", SECRET)
            .var("WHATSAPP_VERIFY_TOKEN", "verify-token-for-desk-media-tests");
        let desk = vars
            .iter()
            .fold(desk, |d, (k, v)| d.var(k, *v))
            .start()
            .await;
        let sim = Sim::start_on(
            sim_listener,
            SimConfig {
                webhook_url: Some(format!("{}/webhook", desk.webhook)),
                app_secret: Some(SECRET.into()),
                numbers,
                ..sim_config(TOKEN)
            },
        )
        .await
        .expect("start the simulator");
        Self { desk, sim }
    }

    /// A browser signed in as the receptionist.
    async fn signed_in(&self) -> Browser {
        let b = self.browser();
        let res = b.sign_in(USER, PASSWORD, "/desk/replies").await;
        assert_eq!(res.status, 303, "sign-in refused\n{}", self.log());
        b
    }

    /// The patient sends a file the simulator holds (a signed webhook); its reply's row id.
    async fn patient_sends(&self, kind: &str, media_id: &str, caption: Option<&str>) -> i64 {
        self.sim
            .reply(Reply::Media {
                from: PATIENT.into(),
                kind: kind.into(),
                media_id: media_id.into(),
                caption: caption.map(str::to_string),
                filename: (kind == "document").then(|| "Blood test (Nov).pdf".into()),
                voice: kind == "audio",
            })
            .await
            .expect("webhook delivered");
        self.env
            .sql()
            .query_row(
                "SELECT reply_id FROM reply_media WHERE media_id = ?1",
                [media_id],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("no reply stored with media {media_id}: {e}"))
    }

    fn media_views(&self) -> i64 {
        self.env
            .count("SELECT count(*) FROM audit_log WHERE action = 'view_media'")
    }
}

/// A voice note's bytes: an Ogg page header and enough audio-like noise to arrive in chunks.
fn voice_note() -> Vec<u8> {
    let mut bytes = b"OggS\0\x02\0\0\0\0\0\0\0\0".to_vec();
    bytes.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn a_voice_note_plays_from_the_desk_exactly_as_sent_and_each_hearing_is_audited() {
    let s = Served::start().await;
    let bytes = voice_note();
    let media = s.sim.add_media(bytes.clone(), "audio/ogg; codecs=opus");
    let reply = s.patient_sends("audio", &media.id, None).await;

    // Stored with its media id and what the webhook said, the bytes nowhere.
    let (mime, voice, outcome, reason): (String, bool, String, String) = s
        .env
        .sql()
        .query_row(
            "SELECT m.mime_type, m.voice, r.outcome, r.reason FROM reply_media m JOIN replies r ON r.id = m.reply_id WHERE r.id = ?1",
            [reply],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("stored reply");
    assert_eq!(
        (mime.as_str(), voice, outcome.as_str(), reason.as_str()),
        (
            "audio/ogg; codecs=opus",
            true,
            "needs_staff",
            "the patient sent a voice note"
        )
    );

    let b = s.signed_in().await;
    let page = b.get("/desk/replies").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("the patient sent a voice note"),
        "{}",
        page.body
    );
    assert!(
        page.header(&reqwest::header::CONTENT_SECURITY_POLICY)
            .contains("media-src 'self'"),
        "the desk allows its own audio and video"
    );
    assert_eq!(s.media_views(), 0, "listing replies shows no file");

    let file = b.get(&format!("/desk/replies/media?reply={reply}")).await;
    assert_eq!(file.status, 200, "{}\n{}", file.body, s.log());
    assert_eq!(file.bytes, bytes, "exactly the bytes the patient sent");
    assert_eq!(file.header(&CONTENT_TYPE), "audio/ogg");
    assert_eq!(file.header(&CONTENT_DISPOSITION), "inline");
    assert_eq!(file.header(&CACHE_CONTROL), "no-store");
    assert_eq!(
        file.header(&reqwest::header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
    let (actor, patient, what): (String, String, String) = s
        .env
        .sql()
        .query_row(
            "SELECT a.actor, p.name, a.new_value FROM audit_log a JOIN patients p ON p.id = a.patient_id WHERE a.action = 'view_media'",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one audited hearing");
    assert_eq!(
        (actor.as_str(), patient.as_str(), what),
        ("staff:asha", "Aarav Sharma", format!("reply {reply}"))
    );
    // Played again: fetched again (nothing was kept), audited again.
    assert_eq!(
        b.get(&format!("/desk/replies/media?reply={reply}"))
            .await
            .bytes,
        bytes
    );
    assert_eq!((s.media_views(), s.sim.media_downloads()), (2, 2));

    // A document is saved under its (made safe) name, with its type.
    let pdf = s
        .sim
        .add_media(b"%PDF-1.4 blood test".to_vec(), "application/pdf");
    let reply = s.patient_sends("document", &pdf.id, None).await;
    let file = b.get(&format!("/desk/replies/media?reply={reply}")).await;
    assert_eq!(file.status, 200, "{}", file.body);
    assert_eq!(file.header(&CONTENT_TYPE), "application/pdf");
    assert_eq!(
        file.header(&CONTENT_DISPOSITION),
        "attachment; filename=\"Blood test (Nov).pdf\""
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_that_cannot_be_shown_get_a_clear_page_and_strangers_the_sign_in() {
    let s = Served::start().await;
    let photo = s
        .sim
        .add_media(b"\xff\xd8\xff photo".to_vec(), "image/jpeg");
    let reply = s
        .patient_sends("image", &photo.id, Some("my new referral letter"))
        .await;
    let (text, reason): (String, String) = s
        .env
        .sql()
        .query_row(
            "SELECT text, reason FROM replies WHERE id = ?1",
            [reply],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("stored reply");
    assert_eq!(
        (text.as_str(), reason.as_str()),
        (
            "my new referral letter",
            "the patient sent a photo with a message to read"
        ),
        "the caption is the reply's text"
    );

    // Not signed in: the sign-in page, which returns here; nothing is fetched.
    let stranger = s
        .browser()
        .get(&format!("/desk/replies/media?reply={reply}"))
        .await;
    assert_eq!(stranger.status, 303);
    let to = stranger.location();
    assert!(
        to.starts_with("/desk/login?next=/desk/replies/media"),
        "{to}"
    );
    assert_eq!(s.sim.media_downloads(), 0);

    let b = s.signed_in().await;
    // About 30 days later WhatsApp has forgotten the file.
    assert!(s.sim.expire_media(&photo.id));
    let page = b.get(&format!("/desk/replies/media?reply={reply}")).await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(page.header(&CONTENT_TYPE).starts_with("text/html"));
    assert!(
        page.body
            .contains("WhatsApp no longer has this file (files are kept about 30 days)"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Signed in as"),
        "a desk page, not a bare error"
    );

    // A download address off WhatsApp's hosts is refused before anything is fetched.
    let port = s.sim.addr().port();
    let elsewhere = s.sim.add_media_on_host(
        b"\xff\xd8\xff other".to_vec(),
        "image/jpeg",
        &format!("localhost:{port}"),
    );
    let reply = s.patient_sends("image", &elsewhere.id, None).await;
    let page = b.get(&format!("/desk/replies/media?reply={reply}")).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("it was not fetched"), "{}", page.body);
    assert_eq!(
        s.sim.media_downloads(),
        0,
        "nothing came from the other host"
    );
    assert!(s.log().contains("localhost"), "the log names the host");

    // Links that name no file.
    let page = b.get("/desk/replies/media?reply=99999").await;
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains("That reply has no file"),
        "{}",
        page.body
    );
    for bad in ["/desk/replies/media?reply=abc", "/desk/replies/media"] {
        let page = b.get(bad).await;
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.body.contains("does not name a reply"), "{}", page.body);
    }
    assert_eq!(s.media_views(), 0, "nothing shown, nothing audited");
}

/// A number in another business account with its own token (issue 21): a file a patient
/// sends to it belongs to that account, and the desk fetches it with that number's token.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_sent_to_a_number_with_its_own_token_opens_with_that_token() {
    const B_ID: &str = "300000000000003";
    const B_TOKEN: &str = "token-of-brand-b-for-desk-media";
    let s = Served::start_with(
        |c| {
            c.replacen(
                "[[rules]]",
                &format!("[whatsapp.numbers.brand-b]\nphone_number_id = \"{B_ID}\"\nwaba_id = \"400000000000004\"\nown_token = true\n\n[[rules]]"),
                1,
            )
            .replacen("[clinics.mumbai]\n", "[clinics.mumbai]\nwhatsapp_number = \"brand-b\"\n", 1)
        },
        &[("REMINDERD_WHATSAPP_TOKEN_BRAND_B", B_TOKEN)],
        vec![SimNumber::new(B_ID, B_TOKEN)],
    )
    .await;
    let bytes = voice_note();
    let media = s
        .sim
        .add_media_for(B_ID, bytes.clone(), "audio/ogg; codecs=opus");
    s.sim
        .reply_to(
            B_ID,
            Reply::Media {
                from: PATIENT.into(),
                kind: "audio".into(),
                media_id: media.id.clone(),
                caption: None,
                filename: None,
                voice: true,
            },
        )
        .await
        .expect("webhook delivered");
    let (reply, number): (i64, Option<String>) = s
        .env
        .sql()
        .query_row(
            "SELECT reply_id, phone_number_id FROM reply_media WHERE media_id = ?1",
            [&media.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("stored reply");
    assert_eq!(
        number.as_deref(),
        Some(B_ID),
        "the number it was sent to is kept"
    );
    let b = s.signed_in().await;
    let file = b.get(&format!("/desk/replies/media?reply={reply}")).await;
    assert_eq!(file.status, 200, "{}\n{}", file.body, s.log());
    assert_eq!(file.bytes, bytes, "exactly the bytes the patient sent");
}
