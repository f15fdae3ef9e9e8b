//! The kernel/user ABI: every number both sides must agree on.
//!
//! The one crate of the kernel/user contract: every number both sides must agree on.
//!
//! The kernel and libcap both depend on this crate and nothing here is defined twice.
//! Every enum has explicit discriminants and a checked conversion back from the raw
//! value; every `#[repr(C)]` layout has its size asserted.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

pub mod bootimage;
pub mod bootinfo;
pub mod component;
pub mod error;
pub mod exit;
pub mod fault;
pub mod invocation;
pub mod iommu;
pub mod ipc_buffer;
pub mod layout;
pub mod msginfo;
pub mod object;
pub mod packed_image;
pub mod pci;
pub mod registers;
pub mod reserved;
pub mod rights;
pub mod slots;
pub mod syscall;
pub mod system;
pub mod vcpu;

/// Defines a `#[repr($repr)]` enum with explicit discriminants plus `TryFrom<$repr>`
/// and `ALL`, so every raw value coming from the other side is checked.
#[macro_export]
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The raw value as it crosses the kernel/user boundary.
            pub const fn raw(self) -> $repr {
                self as $repr
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $repr;
            fn try_from(raw: $repr) -> Result<Self, $repr> {
                match raw {
                    $( x if x == $value => Ok($name::$variant), )+
                    other => Err(other),
                }
            }
        }
    };
}
