//! Ids of children and groups.

use std::fmt;

/// Names one supervised child. Ids are never reused for another child
/// within one engine: a stale id simply names nobody.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ChildId {
    /// The slot index (dense, reused after a reap).
    pub fn index(self) -> u32 {
        self.index
    }

    /// The id as one number (index in the low half, generation in the high
    /// half), for logs and maps.
    pub fn as_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }
}

impl fmt::Debug for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChildId({}.{})", self.index, self.generation)
    }
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// Names a group of children that can be stopped together.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct GroupId(pub(crate) u32);
