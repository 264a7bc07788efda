//! Twilio Programmable Messaging: the send request, its errors, status callbacks, inbound texts and `X-Twilio-Signature`.
// TEMPORARY (replaced by the Twilio branch at merge).
pub struct Client;
impl Client {
    pub fn new(_c: &crate::config::Twilio, _t: secrecy::SecretString) -> Result<Self, String> { Ok(Self) }
    pub async fn send(&self, _m: &super::Outgoing) -> Result<super::Accepted, super::SmsError> { Err(super::SmsError::NotSent(String::new())) }
}
pub fn class(_e: &super::SmsError) -> super::SmsClass { super::SmsClass::Terminal }
pub fn verify(_u: &str, _p: &[(String, String)], _h: Option<&str>, _t: &[u8]) -> bool { false }
pub fn read_status(_p: &[(String, String)]) -> Result<super::DeliveryReport, String> { Err(String::new()) }
pub fn read_inbound(_p: &[(String, String)]) -> Result<super::InboundSms, String> { Err(String::new()) }
