//! The HL7 v2 SIU feed: MLLP framing, reading SIU messages into records, ACKs, the listener.
