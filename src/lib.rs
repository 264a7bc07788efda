//! reminderd: appointment reminders for clinics over the WhatsApp Business Cloud API.
//!
//! The library holds every capability; the `reminderd` binary only parses the command line
//! and calls in. See `ARCHITECTURE.md` for the module map and the invariants.

pub mod config;
pub mod daemon;
pub mod demo;
pub mod desk;
pub mod dispatch;
pub mod feeds;
pub mod import;
pub mod jobs;
pub mod model;
pub mod phone;
pub mod plan;
pub mod privacy;
pub mod replies;
pub mod report;
pub mod secrets;
pub mod server;
pub mod sim;
pub mod sms;
pub mod store;
pub mod template;
pub mod time;
pub mod waitlist;
pub mod whatsapp;
