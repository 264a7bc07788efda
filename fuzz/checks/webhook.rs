//! Arbitrary bytes as a webhook POST: the signature check, then storing and applying the body
//! on a real SQLite database created once per process.

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};

use hmac::{Hmac, Mac};
use reminderd::config::Config;
use reminderd::import::{self, ApplyOptions, ParseOptions};
use reminderd::jobs;
use reminderd::server::verify;
use reminderd::store::Store;
use sha2::Sha256;

const SECRET: &[u8] = b"fuzz-app-secret";

struct World {
    config: &'static Config,
    store: Mutex<Store>,
    // Kept so the folder lives as long as the process.
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let config = super::shipped_config();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("fuzz.db")).expect("open store");
        store.sync_clinics(&config.clinics).expect("sync clinics");
        // Two patients with booking confirmations in the outbox, so replies and statuses in
        // the input can match something.
        let csv = "appointment_id,patient_id,patient_name,phone,language,date,time,clinic\n\
                   A1,P1,Asha Rao,+91 98200 12345,hi,2026-06-02,10:00,mumbai\n\
                   A2,P2,Sam Lee,(212) 555-0142,en,2026-06-02,14:30,nyc\n";
        let parsed =
            import::parse(csv.as_bytes(), config, &ParseOptions::default()).expect("parse fixture");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        import::apply(
            &mut store,
            config,
            &parsed,
            &ApplyOptions {
                file_name: "fixture.csv",
                complete: false,
                dry_run: false,
                imported_by: "fuzz",
                now: super::now(),
            },
        )
        .expect("import fixture");
        jobs::plan_due(&mut store, config, super::now(), false).expect("plan");
        World {
            config,
            store: Mutex::new(store),
            _dir: dir,
        }
    })
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut header = String::from("sha256=");
    for b in tag {
        write!(header, "{b:02x}").expect("writing to a String");
    }
    header
}

/// The first byte decides the `X-Hub-Signature-256` header: a correct one, an upper-cased
/// one, one with a digit flipped, or the body's first line; panics if `server::verify` gets
/// that wrong. Then the body (any bytes: one that is not UTF-8 is stored as a BLOB) is stored
/// and applied; panics on a database error, which for a signed body would lose it.
pub fn check(data: &[u8]) {
    let (mode, body) = data.split_first().map_or((0, data), |(m, b)| (*m, b));
    let good = sign(body);
    let (header, should_pass) = match mode % 4 {
        0 => (good.clone(), true),
        1 => (good.to_uppercase(), false),
        2 => {
            // Flip one hex digit.
            let mut h = good.clone().into_bytes();
            let i = 7 + usize::from(mode) % 64;
            h[i] = if h[i] == b'0' { b'1' } else { b'0' };
            (String::from_utf8(h).expect("ascii"), false)
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let line = text.lines().next().unwrap_or_default().to_string();
            let ok = line.trim() == good;
            (line, ok)
        }
    };
    assert_eq!(
        verify(SECRET, body, &header),
        should_pass,
        "verify({header:?}) over {} bytes",
        body.len()
    );

    let w = world();
    // A panic in an earlier input (the test suite keeps going) must not hide later ones.
    let mut store = w.store.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(e) = jobs::process_webhook(&mut store, w.config, body, super::now()) {
        panic!("database error for a webhook body: {e}");
    }
}
