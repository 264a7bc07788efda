//! What a text costs: GSM-7 or UCS-2, characters counted as the network counts them, and segments.
// TEMPORARY (replaced by the Twilio branch's text.rs at merge).
pub struct Cost { pub segments: u32 }
pub fn cost(_t: &str) -> Cost { Cost { segments: 1 } }
