//! A WIT type as the conversions walk it, made once when a handler loads.
//!
//! wasmtime's `Type` answers `record.fields()` or `variant.cases()` by
//! building each field's type anew, and a record's wire names had to be
//! derived from its WIT names on every value that crossed (~0.4k
//! instructions a field, each way: tests/bench/HISTORY.md). A `Layout` holds the
//! same tree with the wire names already made, so converting a value only
//! walks it. Types that cannot cross the wire have no layout: a handler
//! using them in an event is refused at load.

use wasmtime::component::types::Type;

use super::wire_name;

/// How values of one WIT type cross the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    /// `list<u8>`.
    Bytes,
    List(Box<Layout>),
    FixedList(Box<Layout>, usize),
    Tuple(Vec<Layout>),
    Record(Vec<Field>),
    Variant(Vec<Case>),
    Enum(Vec<String>),
    /// The flags' WIT names and wire names.
    Flags(Vec<Name>),
    Option(Box<Layout>),
    Result {
        ok: Option<Box<Layout>>,
        err: Option<Box<Layout>>,
    },
}

/// A WIT name and its wire name (`long-label`, `longLabel`).
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub wit: String,
    pub wire: String,
}

impl Name {
    pub fn of(wit: &str) -> Name {
        Name { wit: wit.to_owned(), wire: wire_name(wit) }
    }
}

/// A record field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: Name,
    pub layout: Layout,
}

/// A variant case: its name, as written in WIT, and its payload if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub payload: Option<Layout>,
}

impl Layout {
    /// The layout of `ty`, or why its values cannot cross the wire.
    pub fn of(ty: &Type) -> Result<Layout, String> {
        let boxed = |ty: &Type| Layout::of(ty).map(Box::new);
        Ok(match ty {
            Type::Bool => Layout::Bool,
            Type::S8 => Layout::S8,
            Type::U8 => Layout::U8,
            Type::S16 => Layout::S16,
            Type::U16 => Layout::U16,
            Type::S32 => Layout::S32,
            Type::U32 => Layout::U32,
            Type::S64 => Layout::S64,
            Type::U64 => Layout::U64,
            Type::Float32 => Layout::F32,
            Type::Float64 => Layout::F64,
            Type::Char => Layout::Char,
            Type::String => Layout::String,
            Type::List(list) if list.ty() == Type::U8 => Layout::Bytes,
            Type::List(list) => Layout::List(boxed(&list.ty())?),
            Type::FixedLengthList(list) => Layout::FixedList(boxed(&list.ty())?, list.len() as usize),
            Type::Tuple(tuple) => Layout::Tuple(tuple.types().map(|t| Layout::of(&t)).collect::<Result<_, _>>()?),
            Type::Record(record) => Layout::Record(
                record
                    .fields()
                    .map(|f| Ok(Field { name: Name::of(f.name), layout: Layout::of(&f.ty)? }))
                    .collect::<Result<_, String>>()?,
            ),
            Type::Variant(variant) => Layout::Variant(
                variant
                    .cases()
                    .map(|c| Ok(Case { name: c.name.to_owned(), payload: c.ty.as_ref().map(Layout::of).transpose()? }))
                    .collect::<Result<_, String>>()?,
            ),
            Type::Enum(e) => Layout::Enum(e.names().map(str::to_owned).collect()),
            Type::Flags(flags) => Layout::Flags(flags.names().map(Name::of).collect()),
            Type::Option(option) => Layout::Option(boxed(&option.ty())?),
            Type::Result(result) => Layout::Result {
                ok: result.ok().as_ref().map(boxed).transpose()?,
                err: result.err().as_ref().map(boxed).transpose()?,
            },
            Type::Map(_) => return Err("map types cannot cross the wire yet".into()),
            Type::Own(_) | Type::Borrow(_) => return Err("resources cannot cross the wire".into()),
            Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
                return Err("futures, streams and error contexts cannot cross the wire".into());
            }
        })
    }

    /// A short description, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Layout::Bool => "boolean".into(),
            Layout::S8 => "integer in -128..=127 (s8)".into(),
            Layout::U8 => "integer in 0..=255 (u8)".into(),
            Layout::S16 => "integer in -32768..=32767 (s16)".into(),
            Layout::U16 => "integer in 0..=65535 (u16)".into(),
            Layout::S32 => "integer in -2147483648..=2147483647 (s32)".into(),
            Layout::U32 => "integer in 0..=4294967295 (u32)".into(),
            Layout::S64 => "64-bit signed integer (s64)".into(),
            Layout::U64 => "64-bit unsigned integer (u64)".into(),
            Layout::F32 | Layout::F64 => "number".into(),
            Layout::Char => "string of one character (char)".into(),
            Layout::String => "string".into(),
            Layout::Bytes => "bytes".into(),
            Layout::List(_) => "array".into(),
            Layout::FixedList(_, len) => format!("array of {len} items"),
            Layout::Tuple(items) => format!("array of {} items", items.len()),
            Layout::Record(_) | Layout::Flags(_) => "object".into(),
            Layout::Variant(cases) => {
                let tags: Vec<_> = cases.iter().map(|c| format!("{:?}", c.name)).collect();
                format!("{{tag, val}} with tag one of {}", tags.join(", "))
            }
            Layout::Enum(names) => {
                let names: Vec<_> = names.iter().map(|n| format!("{n:?}")).collect();
                format!("one of {}", names.join(", "))
            }
            Layout::Option(inner) => format!("{} or null", inner.describe()),
            Layout::Result { .. } => "{tag: \"ok\" | \"err\", val}".into(),
        }
    }
}
