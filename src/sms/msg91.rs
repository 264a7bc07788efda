//! MSG91's flow API (India, DLT): the send request, its errors, and the delivery-report webhook.
// TEMPORARY (replaced by the MSG91 branch at merge).
pub struct Client;
impl Client {
    pub fn new(_c: &crate::config::Msg91, _t: secrecy::SecretString) -> Result<Self, String> { Ok(Self) }
    pub async fn send(&self, _m: &super::Outgoing) -> Result<super::Accepted, super::SmsError> { Err(super::SmsError::NotSent(String::new())) }
}
pub fn class(_e: &super::SmsError) -> super::SmsClass { super::SmsClass::Terminal }
pub fn webhook_token_ok(_g: Option<&str>, _e: &[u8]) -> bool { false }
pub struct Reports { pub reports: Vec<super::DeliveryReport> }
pub fn read_reports(_c: &str, _b: &[u8]) -> Result<Reports, String> { Err(String::new()) }
