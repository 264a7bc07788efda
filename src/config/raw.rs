//! The serde mirror of `reminders.toml`: each section as written, and the defaults of the
//! keys a file leaves out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Duration;
use serde::Deserialize;

use super::{Acks, ColumnMap, Desk, Field, TemplateText, UnknownAction};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) database: RawDatabase,
    #[serde(default)]
    pub(super) clinics: BTreeMap<String, RawClinic>,
    #[serde(default)]
    pub(super) import: RawImport,
    pub(super) whatsapp: Option<RawWhatsApp>,
    #[serde(default)]
    pub(super) rules: Vec<RawRule>,
    #[serde(default)]
    pub(super) templates: BTreeMap<String, RawTemplate>,
    pub(super) booking_confirmation: Option<RawBooking>,
    pub(super) server: Option<RawServer>,
    pub(super) replies: Option<RawReplies>,
    pub(super) daemon: Option<RawDaemon>,
    pub(super) desk: Option<RawDesk>,
    pub(super) metrics: Option<RawMetrics>,
    pub(super) sms: Option<super::sms::RawSms>,
    #[serde(default)]
    pub(super) feeds: BTreeMap<String, super::feeds::RawFeed>,
    pub(super) conversations: Option<super::conversations::RawConversations>,
    pub(super) booking: Option<super::booking::RawBookingSection>,
    #[serde(default)]
    pub(super) documents: BTreeMap<String, super::documents::RawDocument>,
    #[serde(default)]
    pub(super) prep_notes: Vec<super::documents::RawPrepNote>,
    pub(super) costs: Option<super::costs::RawCosts>,
    pub(super) waitlist: Option<super::waitlist::RawWaitlist>,
    pub(super) report: Option<super::report::RawReport>,
    pub(super) privacy: Option<super::privacy::RawPrivacy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: String,
}

impl Default for Desk {
    /// What a `[desk]` section with only `listen = "127.0.0.1:8081"` means.
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8081)),
            secure_cookies: false,
            session: Duration::hours(13),
            idle_timeout: Duration::minutes(30),
            max_failed_logins: default_max_failed_logins(),
            max_failed_logins_per_name: default_max_failed_logins_per_name(),
            lockout: Duration::minutes(15),
            sign_ins_per_minute_per_address: default_sign_ins_per_minute_per_address(),
            sign_ins_per_minute: default_sign_ins_per_minute(),
            max_upload_bytes: default_max_upload(),
            follow_up_days: default_follow_up_days(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDesk {
    pub(super) listen: String,
    #[serde(default)]
    pub(super) secure_cookies: bool,
    #[serde(default = "default_session")]
    pub(super) session: String,
    #[serde(default = "default_idle_timeout")]
    pub(super) idle_timeout: String,
    #[serde(default = "default_max_failed_logins")]
    pub(super) max_failed_logins: u32,
    #[serde(default = "default_max_failed_logins_per_name")]
    pub(super) max_failed_logins_per_name: u32,
    #[serde(default = "default_lockout")]
    pub(super) lockout: String,
    #[serde(default = "default_sign_ins_per_minute_per_address")]
    pub(super) sign_ins_per_minute_per_address: u32,
    #[serde(default = "default_sign_ins_per_minute")]
    pub(super) sign_ins_per_minute: u32,
    #[serde(default = "default_max_upload")]
    pub(super) max_upload_bytes: usize,
    #[serde(default = "default_follow_up_days")]
    pub(super) follow_up_days: u32,
}

fn default_follow_up_days() -> u32 {
    2
}

fn default_idle_timeout() -> String {
    "30m".into()
}
fn default_max_failed_logins_per_name() -> u32 {
    50
}
fn default_sign_ins_per_minute_per_address() -> u32 {
    20
}
fn default_sign_ins_per_minute() -> u32 {
    120
}

fn default_session() -> String {
    "13h".into()
}
fn default_max_failed_logins() -> u32 {
    5
}
fn default_lockout() -> String {
    "15m".into()
}
pub(super) fn default_max_upload() -> usize {
    10 * 1024 * 1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    #[serde(default = "default_plan_cron")]
    pub(super) plan: String,
    #[serde(default = "default_dispatch_cron")]
    pub(super) dispatch: String,
    #[serde(default = "default_stale_after")]
    pub(super) stale_after: String,
    #[serde(default = "default_grace")]
    pub(super) shutdown_grace: String,
}

impl Default for RawDaemon {
    fn default() -> Self {
        Self {
            plan: default_plan_cron(),
            dispatch: default_dispatch_cron(),
            stale_after: default_stale_after(),
            shutdown_grace: default_grace(),
        }
    }
}

fn default_plan_cron() -> String {
    "0 * * * * *".into()
}
fn default_dispatch_cron() -> String {
    "*/15 * * * * *".into()
}
fn default_stale_after() -> String {
    "5m".into()
}
fn default_grace() -> String {
    "10s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: String,
    #[serde(default = "default_body_limit")]
    pub(super) max_body_bytes: usize,
    #[serde(default = "default_header_timeout")]
    pub(super) header_timeout: String,
    #[serde(default = "default_server_request_timeout")]
    pub(super) request_timeout: String,
    #[serde(default = "default_max_connections")]
    pub(super) max_connections: usize,
    #[serde(default = "default_min_body_rate")]
    pub(super) min_body_rate: u64,
}

pub(super) fn default_min_body_rate() -> u64 {
    1024
}

pub(super) fn default_header_timeout() -> String {
    "10s".into()
}

pub(super) fn default_server_request_timeout() -> String {
    "60s".into()
}

pub(super) fn default_max_connections() -> usize {
    512
}

pub(super) fn default_body_limit() -> usize {
    4 * 1024 * 1024
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplies {
    #[serde(default)]
    pub(super) words: BTreeMap<String, RawWords>,
    #[serde(default)]
    pub(super) acks: BTreeMap<String, Acks>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWords {
    #[serde(default)]
    pub(super) confirm: Vec<String>,
    #[serde(default)]
    pub(super) cancel: Vec<String>,
    #[serde(default)]
    pub(super) reschedule: Vec<String>,
    #[serde(default)]
    pub(super) stop: Vec<String>,
    #[serde(default)]
    pub(super) start: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWhatsApp {
    #[serde(default = "default_api_base")]
    pub(super) api_base: String,
    #[serde(default = "default_api_version")]
    pub(super) api_version: String,
    pub(super) phone_number_id: String,
    pub(super) waba_id: String,
    #[serde(default = "default_rate")]
    pub(super) rate_limit_per_sec: u32,
    pub(super) max_in_flight: Option<usize>,
    #[serde(default = "default_connect_timeout")]
    pub(super) connect_timeout: String,
    #[serde(default = "default_request_timeout")]
    pub(super) request_timeout: String,
    #[serde(default = "default_attempts")]
    pub(super) max_attempts: u32,
    #[serde(default = "default_retry_base")]
    pub(super) retry_base: String,
    #[serde(default = "default_retry_max")]
    pub(super) retry_max: String,
    #[serde(default = "default_spacing")]
    pub(super) recipient_spacing: String,
    #[serde(default = "default_unknown_after")]
    pub(super) unknown_after: String,
    #[serde(default = "default_unknown_action")]
    pub(super) unknown_action: UnknownAction,
    #[serde(default)]
    pub(super) numbers: BTreeMap<String, RawNumber>,
}

/// `[whatsapp.numbers.NAME]`: a further business number (the section's own is `default`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNumber {
    pub(super) phone_number_id: String,
    pub(super) waba_id: Option<String>,
    pub(super) rate_limit_per_sec: Option<u32>,
    #[serde(default)]
    pub(super) own_token: bool,
}

fn default_api_base() -> String {
    "https://graph.facebook.com".into()
}
fn default_api_version() -> String {
    "v23.0".into()
}
fn default_rate() -> u32 {
    80
}
fn default_connect_timeout() -> String {
    "5s".into()
}
fn default_request_timeout() -> String {
    "15s".into()
}
fn default_attempts() -> u32 {
    6
}
fn default_retry_base() -> String {
    "5s".into()
}
fn default_retry_max() -> String {
    "15m".into()
}
fn default_spacing() -> String {
    "6s".into()
}
fn default_unknown_after() -> String {
    "1h".into()
}
fn default_unknown_action() -> UnknownAction {
    UnknownAction::Staff
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) name: String,
    pub(super) label: Option<String>,
    /// `reminder` (not given) or `feedback`.
    pub(super) kind: Option<String>,
    /// A reminder's offset before the start.
    pub(super) before: Option<String>,
    /// A feedback request's delay after the end.
    pub(super) after: Option<String>,
    pub(super) latest: String,
    pub(super) template: String,
    pub(super) clinics: Option<Vec<String>>,
    #[serde(default)]
    pub(super) skip_if_confirmed: bool,
    pub(super) sms_fallback: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplate {
    pub(super) name: String,
    #[serde(default)]
    pub(super) params: Vec<Field>,
    #[serde(default)]
    pub(super) buttons: Vec<crate::model::Intent>,
    #[serde(default)]
    pub(super) languages: BTreeMap<String, TemplateText>,
    pub(super) contact_template: Option<String>,
    pub(super) ttl: Option<String>,
    pub(super) alternate: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBooking {
    pub(super) enabled: bool,
    pub(super) template: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) path: Option<PathBuf>,
    pub(super) url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClinic {
    pub(super) display_name: String,
    pub(super) time_zone: String,
    pub(super) phone_region: String,
    #[serde(default = "default_language")]
    pub(super) default_language: String,
    #[serde(default = "default_duration")]
    pub(super) default_duration_min: u32,
    pub(super) import_format: Option<String>,
    pub(super) date_order: Option<super::DateOrder>,
    #[serde(default)]
    pub(super) import_partial: bool,
    pub(super) quiet_hours: Option<String>,
    pub(super) max_import_age: Option<String>,
    #[serde(default = "default_date_format")]
    pub(super) date_format: String,
    #[serde(default = "default_time_format")]
    pub(super) time_format: String,
    pub(super) sms_provider: Option<crate::sms::Provider>,
    pub(super) sms_fallback: Option<bool>,
    pub(super) whatsapp_number: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) acks: Option<super::costs::AckChoice>,
    pub(super) waitlist: Option<super::waitlist::RawWaitlist>,
}

fn default_date_format() -> String {
    "%A %-d %B".into()
}

fn default_time_format() -> String {
    "%H:%M".into()
}

fn default_language() -> String {
    "en".into()
}

fn default_duration() -> u32 {
    30
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImport {
    #[serde(default)]
    pub(super) columns: ColumnMap,
    pub(super) date_formats: Option<Vec<String>>,
    pub(super) time_formats: Option<Vec<String>>,
    #[serde(default)]
    pub(super) formats: BTreeMap<String, RawFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFormat {
    #[serde(default)]
    pub(super) columns: ColumnMap,
    pub(super) date_formats: Option<Vec<String>>,
    pub(super) time_formats: Option<Vec<String>>,
}

pub(super) fn default_date_formats() -> Vec<String> {
    vec!["%Y-%m-%d".into()]
}

pub(super) fn default_time_formats() -> Vec<String> {
    vec!["%H:%M".into(), "%H:%M:%S".into(), "%I:%M %p".into()]
}
