//! [`InlineStr`]: a copy of a short string kept in place, for what a denial's message names.
//!
//! A denial copies the names its message uses (the repository, the resource, a login) out of
//! the job and the policy it was decided on, into the one box it carries. Each name on the heap
//! of its own would cost an allocation and a free per denial, and an `Arc` shared with the
//! policy an atomic count up and down; a copy of a few dozen bytes into the box costs neither.
//! GitHub bounds the names that come from jobs (a login at 39 bytes, a repository's
//! `owner/name` at 140), so these fit in place; a longer one (a resource's name is the
//! access repository's choice) goes to the heap, and reads the same.

use std::fmt;

/// A string of at most `N` bytes kept in place, or a longer one on the heap. `N` is at most 255.
#[derive(Clone)]
pub(crate) enum InlineStr<const N: usize> {
    Inline { len: u8, bytes: [u8; N] },
    Heap(Box<str>),
}

impl<const N: usize> InlineStr<N> {
    const FITS_A_BYTE: () = assert!(N <= u8::MAX as usize);

    pub(crate) fn new(s: &str) -> Self {
        let () = Self::FITS_A_BYTE;
        if s.len() > N {
            return InlineStr::Heap(s.into());
        }
        let mut bytes = [0; N];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        InlineStr::Inline {
            len: s.len() as u8,
            bytes,
        }
    }

    /// The empty string, in place.
    pub(crate) const EMPTY: Self = InlineStr::Inline {
        len: 0,
        bytes: [0; N],
    };

    /// Replaces the string with `s`, copying only its bytes when it fits in place.
    pub(crate) fn set(&mut self, s: &str) {
        match self {
            InlineStr::Inline { len, bytes } if s.len() <= N => {
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                *len = s.len() as u8;
            }
            _ => *self = InlineStr::new(s),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // A whole `str` was copied, so the bytes are UTF-8; the fallback is never taken.
            InlineStr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            InlineStr::Heap(s) => s,
        }
    }
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        InlineStr::EMPTY
    }
}

impl<const N: usize> std::ops::Deref for InlineStr<N> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> PartialEq for InlineStr<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<const N: usize> Eq for InlineStr<N> {}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::InlineStr;

    #[test]
    fn reads_back_what_it_was_given_in_place_or_on_the_heap() {
        let repository = "conda-forge/pytorch-cpu-feedstock";
        let short = InlineStr::<40>::new(repository);
        assert!(matches!(short, InlineStr::Inline { .. }));
        assert_eq!(&*short, repository);
        let long = InlineStr::<8>::new(repository);
        assert!(matches!(long, InlineStr::Heap(_)));
        assert_eq!(&*long, repository);
        // Exactly N bytes stay in place; multi-byte characters are copied whole.
        let full = InlineStr::<5>::new("grün");
        assert!(matches!(full, InlineStr::Inline { .. }));
        assert_eq!(full.as_str(), "grün");
        assert_eq!(InlineStr::<4>::default().as_str(), "");
        assert_eq!(InlineStr::<4>::new("ab"), InlineStr::<4>::new("ab"));
        assert_ne!(InlineStr::<4>::new("ab"), InlineStr::<4>::new("abc"));
        // Set in place over a longer string, and past the room in place.
        let mut name = InlineStr::<4>::new("abcd");
        name.set("xy");
        assert_eq!(name, InlineStr::<4>::new("xy"));
        name.set("too long");
        assert_eq!(name.as_str(), "too long");
    }
}
