//! Values as the store binds and reads them: SQLite's five storage classes, which every
//! PostgreSQL column the store uses maps onto, and the parameter lists statements take.

/// A value as the database holds it: SQLite's five storage classes, which every PostgreSQL
/// column the store uses maps onto.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (PostgreSQL's integers and booleans).
    Integer(i64),
    /// A double (PostgreSQL's floats and fractional numerics).
    Real(f64),
    /// Text, as bytes (SQLite does not promise UTF-8).
    Text(&'a [u8]),
    /// Bytes.
    Blob(&'a [u8]),
}

/// What may be bound as a statement's parameter.
pub trait ToValue {
    /// The value as the database should see it.
    fn to_value(&self) -> ValueRef<'_>;
}

/// Why a column's value could not be read as the type asked for.
pub type FromValueError = String;

/// What a column may be read as.
pub trait FromValue: Sized {
    /// Reads `value`, or says why it cannot.
    fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError>;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> ValueRef<'_> {
                ValueRef::Integer(i64::from(*self))
            }
        }
        impl FromValue for $t {
            fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError> {
                match value {
                    ValueRef::Integer(n) => <$t>::try_from(n)
                        .map_err(|_| format!("{n} is out of range for {}", stringify!($t))),
                    other => Err(format!("expected an integer, found {}", class(other))),
                }
            }
        }
    )*};
}
int_to_value!(i8, i16, i32, i64, u8, u16, u32);

impl ToValue for usize {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToValue for u64 {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl FromValue for usize {
    fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError> {
        let n = i64::from_value(value)?;
        usize::try_from(n).map_err(|_| format!("{n} is out of range for usize"))
    }
}

impl FromValue for u64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError> {
        let n = i64::from_value(value)?;
        u64::try_from(n).map_err(|_| format!("{n} is out of range for u64"))
    }
}

impl ToValue for bool {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::from(*self))
    }
}

impl FromValue for bool {
    fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}

impl FromValue for f64 {
    fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError> {
        match value {
            ValueRef::Real(f) => Ok(f),
            #[allow(clippy::cast_precision_loss)]
            ValueRef::Integer(n) => Ok(n as f64),
            other => Err(format!("expected a number, found {}", class(other))),
        }
    }
}

impl ToValue for str {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self.as_bytes())
    }
}

impl ToValue for String {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self.as_bytes())
    }
}

impl FromValue for String {
    fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError> {
        match value {
            // Bytes that are text (a webhook body, kept as bytes on PostgreSQL) read as text.
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                String::from_utf8(t.to_vec()).map_err(|_| "the text is not valid UTF-8".to_string())
            }
            other => Err(format!("expected text, found {}", class(other))),
        }
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError> {
        match value {
            ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b.to_vec()),
            other => Err(format!("expected bytes, found {}", class(other))),
        }
    }
}

impl ToValue for ValueRef<'_> {
    fn to_value(&self) -> ValueRef<'_> {
        *self
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> ValueRef<'_> {
        self.as_ref().map_or(ValueRef::Null, ToValue::to_value)
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: ValueRef<'_>) -> Result<Self, FromValueError> {
        match value {
            ValueRef::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue + ?Sized> ToValue for Box<T> {
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

impl ToValue for std::borrow::Cow<'_, str> {
    fn to_value(&self) -> ValueRef<'_> {
        ValueRef::Text(self.as_bytes())
    }
}

/// The storage class of `value`, in words for an error.
pub(super) fn class(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "bytes",
    }
}

/// A statement's parameters: `params![a, b]`, an array of one type, `()` for none, or
/// [`params_from_iter`].
pub trait Params {
    /// Hands the parameters, in order, to `f`.
    fn with_values<R>(&self, f: &mut dyn FnMut(&[&dyn ToValue]) -> R) -> R;
}

impl Params for () {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[&dyn ToValue]) -> R) -> R {
        f(&[])
    }
}

impl Params for &[&dyn ToValue] {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[&dyn ToValue]) -> R) -> R {
        f(self)
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[&dyn ToValue]) -> R) -> R {
        let values: Vec<&dyn ToValue> = self.iter().map(|v| v as &dyn ToValue).collect();
        f(&values)
    }
}

/// Parameters from an iterator (a list whose length is known only at run time).
pub struct ParamsFromIter<I>(I);

/// Binds the items of `iter`, in order.
pub fn params_from_iter<I>(iter: I) -> ParamsFromIter<I>
where
    I: IntoIterator + Clone,
    I::Item: ToValue,
{
    ParamsFromIter(iter)
}

impl<I> Params for ParamsFromIter<I>
where
    I: IntoIterator + Clone,
    I::Item: ToValue,
{
    fn with_values<R>(&self, f: &mut dyn FnMut(&[&dyn ToValue]) -> R) -> R {
        let items: Vec<I::Item> = self.0.clone().into_iter().collect();
        let values: Vec<&dyn ToValue> = items.iter().map(|v| v as &dyn ToValue).collect();
        f(&values)
    }
}

impl ToValue for rusqlite::types::Value {
    fn to_value(&self) -> ValueRef<'_> {
        use rusqlite::types::Value as V;
        match self {
            V::Null => ValueRef::Null,
            V::Integer(n) => ValueRef::Integer(*n),
            V::Real(f) => ValueRef::Real(*f),
            V::Text(t) => ValueRef::Text(t.as_bytes()),
            V::Blob(b) => ValueRef::Blob(b),
        }
    }
}
