//! Tests of the template and account health rules.
