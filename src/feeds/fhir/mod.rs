//! The FHIR R4 source: resources read into records, the scheduled sync, write-back.
