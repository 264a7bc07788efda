//! The PostgreSQL side of [`super::Conn`]: one `tokio-postgres` connection, driven on a
//! thread of its own so that the store's synchronous methods can wait on it from anywhere
//! (a blocking thread, a command's `main`) without needing, or upsetting, the caller's runtime.
//!
//! Every transaction takes one transaction-scoped advisory lock before its first statement.
//! That gives PostgreSQL the store's SQLite semantics (one writing transaction at a time, so
//! a method's read-check-write stays true across instances) without session locks, which
//! connection pools and PgBouncer break. The lock ends with the transaction, so an instance
//! that dies mid-transaction holds nothing.

use std::error::Error as _;
use std::sync::Arc;

use bytes::BytesMut;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::{Error, Result, StatementCache, ToValue, ValueRef, dollar_placeholders};

/// How every PostgreSQL transaction begins: the store's write lock, held to its end.
/// (The key is arbitrary but fixed: "reminderd" in ASCII, folded into 63 bits.)
pub(super) const BEGIN: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(8244793155187323492)";

/// How a claim's transaction begins: without the store's write lock, its rows locked by
/// `FOR UPDATE SKIP LOCKED` instead.
pub(super) const BEGIN_ROW_LOCKED: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Where and how to connect.
#[derive(Clone)]
pub struct PgOptions {
    /// A `postgres://` URL or a `key=value` connection string.
    pub url: String,
    /// The password, kept out of the URL (from the environment or a systemd credential).
    pub password: Option<String>,
    /// How the connection names itself in `pg_stat_activity`.
    pub application_name: String,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact(&self.url))
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// `url` with any password in it replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                if userinfo.contains(':') {
                    format!("{scheme}://{user}:…@{host}")
                } else {
                    url.to_string()
                }
            }
            None => url.to_string(),
        },
        None => url
            .split_whitespace()
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=…"
                } else {
                    kv
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// One open connection, opened again when the server went away (a restart, a failover).
pub struct PgConn {
    options: PgOptions,
    client: std::cell::RefCell<tokio_postgres::Client>,
    statements: StatementCache,
    /// When the connection was last opened or tried: a server that is down is tried again
    /// at most once every [`RETRY_AFTER`], not on every statement.
    tried_at: std::cell::Cell<std::time::Instant>,
}

/// How long a failed reconnection holds off the next try.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl PgConn {
    /// Connects, with TLS when the server offers it (or the URL's `sslmode=require` says it
    /// must), through rustls and the system's trusted certificates.
    pub(super) fn connect(options: &PgOptions) -> Result<Self> {
        let client = open_client(options)?;
        Ok(Self {
            options: options.clone(),
            client: std::cell::RefCell::new(client),
            statements: StatementCache::default(),
            tried_at: std::cell::Cell::new(std::time::Instant::now()),
        })
    }

    /// Opens the connection again if the server closed it; called only between transactions
    /// (a transaction that lost its connection is lost, and says so).
    pub(super) fn revive(&self) -> Result<()> {
        if !self.client.borrow().is_closed() {
            return Ok(());
        }
        if self.tried_at.get().elapsed() < RETRY_AFTER {
            return Err(Error::Unavailable(
                "the connection to PostgreSQL is closed; it is opened again in a moment".into(),
            ));
        }
        self.tried_at.set(std::time::Instant::now());
        let client = open_client(&self.options).map_err(|e| {
            Error::Unavailable(format!("PostgreSQL cannot be reached again yet: {e}"))
        })?;
        self.statements.borrow_mut().clear();
        *self.client.borrow_mut() = client;
        tracing::info!(server = %redact(&self.options.url), "connected to PostgreSQL again");
        Ok(())
    }

    /// The server's prepared form of `sql` (written with SQLite's placeholders).
    pub(super) fn prepare(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(stmt) = self.statements.borrow().get(sql) {
            return Ok(stmt.clone());
        }
        let (text, used) = dollar_placeholders(sql);
        let highest = used.last().copied().unwrap_or(0);
        let stmt = if used.len() == highest {
            wait(self.client.borrow().prepare(&text))?
        } else {
            // A statement that skips a number (a shared list of values, of which each
            // statement uses some, as SQLite allows): the skipped ones are typed, since the
            // server cannot infer a parameter it never sees; the others are left to it.
            let unspecified = Type::new(
                "unspecified".into(),
                0,
                tokio_postgres::types::Kind::Simple,
                "pg_catalog".into(),
            );
            let types: Vec<Type> = (1..=highest)
                .map(|i| {
                    if used.contains(&i) {
                        unspecified.clone()
                    } else {
                        Type::INT8
                    }
                })
                .collect();
            wait(self.client.borrow().prepare_typed(&text, &types))?
        };
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    /// Runs `stmt`; the rows it changed.
    pub(super) fn execute(
        &self,
        stmt: &tokio_postgres::Statement,
        values: &[&dyn ToValue],
    ) -> Result<usize> {
        let loose = loosen(values);
        let params = as_params(&loose);
        let n = wait(self.client.borrow().execute(stmt, &params))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Runs `stmt`; all its rows.
    pub(super) fn query(
        &self,
        stmt: &tokio_postgres::Statement,
        values: &[&dyn ToValue],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let loose = loosen(values);
        let params = as_params(&loose);
        Ok(wait(self.client.borrow().query(stmt, &params))?)
    }

    /// Runs statements without parameters (the simple query protocol).
    pub(super) fn batch(&self, sql: &str) -> Result<()> {
        Ok(wait(self.client.borrow().batch_execute(sql))?)
    }
}

/// The driver's settings for `options`.
fn client_config(options: &PgOptions) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = options.url.parse()?;
    if let Some(password) = &options.password {
        config.password(password);
    }
    if config.get_application_name().is_none() {
        config.application_name(&options.application_name);
    }
    Ok(config)
}

/// Listens on `channel` over a connection of its own, calling `heard` for each notification,
/// until the connection ends (`Ok`: the server closed it) or fails. Runs on the caller's
/// runtime: for the daemon's wake-ups, whose polling goes on whatever becomes of this.
pub async fn listen(options: &PgOptions, channel: &str, mut heard: impl FnMut()) -> Result<()> {
    use tokio_postgres::AsyncMessage;
    let (client, mut connection) = client_config(options)?.connect(tls()?).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection is polled for its messages, which also carries LISTEN's own exchange.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if tx.send(()).is_err() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    // A channel name is an identifier: quoted, as the store names it.
    client
        .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "")))
        .await?;
    tracing::debug!(channel, "listening for notifications");
    while rx.recv().await.is_some() {
        heard();
    }
    drop(client);
    match driver.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(Error::Invalid(format!("the listener stopped: {e}"))),
    }
}

/// Opens a client; its connection is driven on a thread of its own.
fn open_client(options: &PgOptions) -> Result<tokio_postgres::Client> {
    let config = client_config(options)?;
    let tls = tls()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("reminderd-postgres".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::Invalid(format!(
                        "cannot start the PostgreSQL connection's thread: {e}"
                    ))));
                    return;
                }
            };
            runtime.block_on(async move {
                let (client, connection) = match config.connect(tls).await {
                    Ok(pair) => pair,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(client));
                // Drives the socket until the client is dropped or the server goes away.
                if let Err(e) = connection.await {
                    tracing::warn!(error = %describe(&e), "the PostgreSQL connection ended");
                }
            });
        })
        .map_err(|e| Error::Invalid(format!("cannot start a thread: {e}")))?;
    let client = ready_rx
        .recv()
        .map_err(|_| Error::Invalid("the PostgreSQL connection's thread stopped".into()))??;
    Ok(client)
}

/// Waits for a client future; the connection's own thread does the I/O.
fn wait<T>(
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    futures_executor::block_on(f)
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier)
        .map_err(|e| Error::Invalid(format!("cannot set up TLS for PostgreSQL: {e}")))?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// What a PostgreSQL failure means, with the server's own words when it gave any.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    if e.is_closed() {
        return "the connection to PostgreSQL is closed".into();
    }
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// A value bound the way SQLite would take it: converted to whatever type the server
/// inferred for its place.
#[derive(Debug)]
struct Loose<'a>(ValueRef<'a>);

fn loosen<'a>(values: &'a [&'a dyn ToValue]) -> Vec<Loose<'a>> {
    values.iter().map(|v| Loose(v.to_value())).collect()
}

fn as_params<'a>(loose: &'a [Loose<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    loose.iter().map(|l| l as &(dyn ToSql + Sync)).collect()
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Loose<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if let tokio_postgres::types::Kind::Domain(inner) = ty.kind() {
            return self.to_sql(inner, out);
        }
        match (self.0, ty) {
            (ValueRef::Null, _) => return Ok(IsNull::Yes),
            (ValueRef::Integer(n), &Type::INT8) => n.to_sql(ty, out)?,
            (ValueRef::Integer(n), &Type::INT4) => i32::try_from(n)?.to_sql(ty, out)?,
            (ValueRef::Integer(n), &Type::INT2) => i16::try_from(n)?.to_sql(ty, out)?,
            (ValueRef::Integer(n), &Type::BOOL) => (n != 0).to_sql(ty, out)?,
            #[allow(clippy::cast_precision_loss)]
            (ValueRef::Integer(n), &Type::FLOAT8) => (n as f64).to_sql(ty, out)?,
            (ValueRef::Real(f), &Type::FLOAT8) => f.to_sql(ty, out)?,
            #[allow(clippy::cast_possible_truncation)]
            (ValueRef::Real(f), &Type::FLOAT4) => (f as f32).to_sql(ty, out)?,
            (ValueRef::Integer(n), t) if is_text(t) => n.to_string().as_str().to_sql(ty, out)?,
            (ValueRef::Real(f), t) if is_text(t) => f.to_string().as_str().to_sql(ty, out)?,
            (ValueRef::Text(s), t) if is_text(t) => std::str::from_utf8(s)?.to_sql(ty, out)?,
            (ValueRef::Text(s), &Type::INT8) => std::str::from_utf8(s)?
                .trim()
                .parse::<i64>()?
                .to_sql(ty, out)?,
            (ValueRef::Blob(b) | ValueRef::Text(b), &Type::BYTEA) => b.to_sql(ty, out)?,
            (value, ty) => {
                return Err(format!(
                    "cannot bind {} where PostgreSQL expects {ty}",
                    super::class(value)
                )
                .into());
            }
        };
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON
    )
}

/// A column read as one of SQLite's storage classes.
struct Raw<'a>(ValueRef<'a>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(match *ty {
            Type::BOOL => ValueRef::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => ValueRef::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => ValueRef::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => ValueRef::Integer(i64::from_sql(ty, raw)?),
            Type::OID => ValueRef::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => ValueRef::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => ValueRef::Real(f64::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => ValueRef::Blob(raw),
            Type::JSONB => ValueRef::Text(raw.get(1..).unwrap_or_default()),
            _ => ValueRef::Text(raw),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Raw(ValueRef::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `numeric` (what `sum()` of integers gives): an integer when it has no fraction.
fn numeric(raw: &[u8]) -> Result<ValueRef<'static>, BoxError> {
    let word = |i: usize| -> Result<i16, BoxError> {
        let b = raw
            .get(i * 2..i * 2 + 2)
            .ok_or("a numeric value is cut short")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let digits = usize::try_from(word(0)?)?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let scale = word(3)?;
    if sign == 0xC000 {
        return Ok(ValueRef::Real(f64::NAN));
    }
    let mut whole: i128 = 0;
    let mut value = 0.0_f64;
    for i in 0..digits {
        let d = i128::from(word(4 + i)?);
        let power = weight - i32::try_from(i)?;
        #[allow(clippy::cast_precision_loss)]
        {
            value += d as f64 * 10_000_f64.powi(power);
        }
        if power >= 0 {
            whole = whole.saturating_add(
                d.saturating_mul(10_000_i128.saturating_pow(u32::try_from(power)?)),
            );
        }
    }
    let negative = sign == 0x4000;
    if scale == 0 {
        let n = i64::try_from(if negative { -whole } else { whole })?;
        Ok(ValueRef::Integer(n))
    } else {
        Ok(ValueRef::Real(if negative { -value } else { value }))
    }
}

/// Column `i` of `row` as one of SQLite's storage classes.
pub(super) fn value_at(row: &tokio_postgres::Row, i: usize) -> Result<ValueRef<'_>, String> {
    row.try_get::<_, Raw<'_>>(i)
        .map(|r| r.0)
        .map_err(|e| match e.source() {
            Some(source) => source.to_string(),
            None => e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows_in_a_redacted_url() {
        assert_eq!(
            redact("postgres://reminderd:s3cret@db.example/reminders"),
            "postgres://reminderd:…@db.example/reminders"
        );
        assert_eq!(
            redact("host=db user=reminderd password=s3cret"),
            "host=db user=reminderd password=…"
        );
        assert_eq!(redact("postgres://db/reminders"), "postgres://db/reminders");
    }

    #[test]
    fn numerics_read_as_integers_or_reals() {
        // 12345678: two base-10000 digits (1234, 5678), weight 1, no scale.
        let raw = [0, 2, 0, 1, 0, 0, 0, 0, 0x04, 0xD2, 0x16, 0x2E];
        assert_eq!(numeric(&raw).expect("sql"), ValueRef::Integer(12_345_678));
        // -1.5: digits (1, 5000), weight 0, scale 1.
        let raw = [0, 2, 0, 0, 0x40, 0, 0, 1, 0, 1, 0x13, 0x88];
        assert_eq!(numeric(&raw).expect("sql"), ValueRef::Real(-1.5));
        // zero: no digits.
        assert_eq!(
            numeric(&[0, 0, 0, 0, 0, 0, 0, 0]).expect("sql"),
            ValueRef::Integer(0)
        );
    }
}
