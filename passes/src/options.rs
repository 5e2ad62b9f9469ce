//! Typed pass options. A pass declares its options once with [`pass_options!`](crate::pass_options); the macro
//! gives the struct, its defaults, parsing from `{key=value ...}` and the `--list-passes`
//! description.

/// A value type an option can have.
pub trait OptionValue: Sized {
    /// The type as shown in `--list-passes`.
    const TYPE_NAME: &'static str;
    fn parse_option(s: &str) -> Result<Self, String>;
    fn show(&self) -> String;
}

macro_rules! option_value_from_str {
    ($($t:ty => $name:literal),*) => {$(
        impl OptionValue for $t {
            const TYPE_NAME: &'static str = $name;
            fn parse_option(s: &str) -> Result<Self, String> {
                s.parse::<$t>().map_err(|_| format!("'{s}' is not a valid {}", $name))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
option_value_from_str!(u32 => "unsigned", u64 => "unsigned", usize => "unsigned", i64 => "integer", f64 => "number", String => "string");

impl OptionValue for bool {
    const TYPE_NAME: &'static str = "bool";
    fn parse_option(s: &str) -> Result<Self, String> {
        match s {
            "true" | "1" | "" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("'{s}' is not a valid bool (true or false)")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// A count that may be left to the pass: `auto` (`None`) or a number.
impl OptionValue for Option<u32> {
    const TYPE_NAME: &'static str = "auto|unsigned";
    fn parse_option(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(None),
            _ => s
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("'{s}' is not 'auto' or a valid unsigned")),
        }
    }
    fn show(&self) -> String {
        self.map_or("auto".to_string(), |v| v.to_string())
    }
}

/// One option, as `--list-passes` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionInfo {
    pub name: &'static str,
    pub type_name: &'static str,
    pub default: String,
    pub help: &'static str,
}

/// Implemented by every pass's options struct (through [`pass_options!`](crate::pass_options)).
pub trait PassOptions: Sized + Default {
    fn describe() -> Vec<OptionInfo>;
    /// Sets one option from its pipeline spelling.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String>;
    /// The options that differ from their defaults, in their pipeline spelling.
    fn changed(&self) -> Vec<(&'static str, String)>;

    /// The pass `name` with these options, as a pipeline names it (`tile{prune-waits=false}`;
    /// options at their defaults stay out).
    fn spell(&self, name: &str) -> String {
        let changed = self.changed();
        if changed.is_empty() {
            return name.to_string();
        }
        let items: Vec<String> = changed.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{name}{{{}}}", items.join(" "))
    }

    fn parse(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut o = Self::default();
        for (k, v) in pairs {
            o.set(k, v)?;
        }
        Ok(o)
    }
}

/// Declares a pass's options struct:
///
/// ```
/// mkc_passes::pass_options! {
///     /// Options of `my-pass`.
///     pub struct MyOptions {
///         /// Stop after this many rounds.
///         max_rounds: u32 = 10 => "max-rounds",
///     }
/// }
/// use mkc_passes::options::PassOptions;
/// let o = MyOptions::parse(&[("max-rounds".into(), "3".into())]).unwrap();
/// assert_eq!(o.max_rounds, 3);
/// assert!(MyOptions::parse(&[("rounds".into(), "3".into())]).is_err());
/// assert_eq!(o.spell("my-pass"), "my-pass{max-rounds=3}");
/// assert_eq!(MyOptions::default().spell("my-pass"), "my-pass");
/// ```
#[macro_export]
macro_rules! pass_options {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                #[doc = $help:literal]
                $field:ident : $ty:ty = $default:expr => $key:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $( #[doc = $help] pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $crate::options::PassOptions for $name {
            fn describe() -> Vec<$crate::options::OptionInfo> {
                let d = <$name as Default>::default();
                let _ = &d;
                vec![$(
                    $crate::options::OptionInfo {
                        name: $key,
                        type_name: <$ty as $crate::options::OptionValue>::TYPE_NAME,
                        default: $crate::options::OptionValue::show(&d.$field),
                        help: $help.trim(),
                    },
                )*]
            }

            fn changed(&self) -> Vec<(&'static str, String)> {
                let d = <$name as Default>::default();
                let _ = &d;
                #[allow(unused_mut)]
                let mut v = Vec::new();
                $(
                    if self.$field != d.$field {
                        v.push(($key, $crate::options::OptionValue::show(&self.$field)));
                    }
                )*
                v
            }

            #[allow(unused_variables)]
            fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
                match key {
                    $( $key => {
                        self.$field = <$ty as $crate::options::OptionValue>::parse_option(value)
                            .map_err(|e| format!("option '{}': {e}", $key))?;
                        Ok(())
                    } )*
                    _ => {
                        let valid: Vec<&str> = vec![$($key),*];
                        if valid.is_empty() {
                            Err(format!("unknown option '{key}': this pass takes no options"))
                        } else {
                            Err(format!("unknown option '{key}'; valid options: {}", valid.join(", ")))
                        }
                    }
                }
            }
        }
    };
}
