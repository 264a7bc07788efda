//! India's DLT templates: the registered text with `{#var#}` slots, filled and checked before sending.
// TEMPORARY (replaced by the MSG91 branch's dlt.rs at merge).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DltError(String);
pub fn placeholders(_t: &str) -> Result<Vec<String>, DltError> { Ok(vec![]) }
pub fn matches(_t: &str, _r: &str) -> Result<(), DltError> { Ok(()) }
pub fn check_fixed(_p: &str, _s: &[String], _c: usize) -> Result<(), DltError> { Ok(()) }
pub struct Filled { pub text: String, pub variables: Vec<String> }
pub fn fill(_t: &str, _v: &impl Fn(&str) -> Option<String>, _cap: usize) -> Result<Filled, DltError> { Err(DltError(String::new())) }
