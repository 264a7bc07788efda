//! Integration tests: one binary (faster to link) with a module per capability. They drive
//! the real `reminderd` binary against real SQLite files in temporary folders.

mod browser;
mod common;
mod config_cmd;
mod crash;
mod daemon;
mod dbfault;
mod demo;
mod desk;
mod desk_board;
mod desk_channels;
mod desk_follow_ups;
mod desk_harness;
mod desk_media;
mod desk_patient;
mod desk_remind;
mod desk_upload;
mod desk_upload_prg;
mod feeds_hl7;
mod fuzz_regressions;
mod import_channels;
mod import_cmd;
mod layout;
mod listing;
mod props;
mod schema;
mod sending;
mod sim_api;
mod sms_flow;
mod sms_msg91;
mod sms_twilio;
mod soak;
mod webhook;
