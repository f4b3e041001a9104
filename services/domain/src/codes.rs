//! Tables of stable codes: an enum whose every variant has one spelling,
//! stored and shown as that spelling. Job failures, dataset problems and
//! audit actions are each one `code_table!`.

/// Declares a code enum with its spellings: the enum, `ALL`, `as_str`,
/// `from_code` (the code spelled so, if any) and `Display`.
#[macro_export]
macro_rules! code_table {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The code as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The code spelled `raw`, if there is one.
            pub fn from_code(raw: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|c| c.as_str() == raw)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
