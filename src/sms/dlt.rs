//! India's DLT templates: the registered text with `{#var#}` slots, filled and checked before sending.
