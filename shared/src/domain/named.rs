//! Enums whose variants have stable names (metric dimensions, reasons in responses): one
//! declaration gives the variants, their names and the list of all of them, so that a new
//! variant cannot be left out of any.

/// Declares a fieldless enum whose every variant has a stable name, with
/// `ALL` (every variant, in declaration order), `COUNT`, `name()` and `index()` (its
/// position in `ALL`).
///
/// ```text
/// named_enum! {
///     /// What it is.
///     pub enum Colour {
///         Red => "red",
///         /// Not quite red.
///         Orange => "orange",
///     }
/// }
/// ```
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Enum:ident {
            $( $(#[$variant_meta:meta])* $Variant:ident => $name:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $Enum {
            $( $(#[$variant_meta])* $Variant, )+
        }

        impl $Enum {
            /// How many variants there are.
            pub const COUNT: usize = [$($name),+].len();
            /// Every variant, in declaration order.
            pub const ALL: [$Enum; $Enum::COUNT] = [$($Enum::$Variant),+];

            /// The stable name (a metric dimension's value, a reason's text).
            pub const fn name(self) -> &'static str {
                match self {
                    $( $Enum::$Variant => $name, )+
                }
            }

            /// The position in [`Self::ALL`].
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enum.
        enum Colour {
            Red => "red",
            /// Documented.
            Orange => "orange",
            Yellow => "yellow",
        }
    }

    #[test]
    fn every_variant_is_listed_once_in_order_with_its_name() {
        assert_eq!(Colour::COUNT, 3);
        assert_eq!(Colour::ALL, [Colour::Red, Colour::Orange, Colour::Yellow]);
        assert_eq!(Colour::ALL.map(Colour::name), ["red", "orange", "yellow"]);
        for (i, colour) in Colour::ALL.into_iter().enumerate() {
            assert_eq!(colour.index(), i);
        }
    }
}
