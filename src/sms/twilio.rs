//! Twilio Programmable Messaging: the send request, its errors, status callbacks, inbound texts and `X-Twilio-Signature`.
