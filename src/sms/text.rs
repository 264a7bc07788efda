//! What a text costs: GSM-7 or UCS-2, characters counted as the network counts them, and segments.
