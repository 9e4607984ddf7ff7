//! The two points of a build where a config's own commands run.

use std::fmt;

/// Which of the two command variables to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// PRE_DEFCONFIG_CMDS, before `make <DEFCONFIG>`.
    PreDefconfig,
    /// POST_DEFCONFIG_CMDS, right after it.
    PostDefconfig,
}

impl Stage {
    /// The variable holding this stage's commands.
    pub fn variable(self) -> &'static str {
        match self {
            Self::PreDefconfig => "PRE_DEFCONFIG_CMDS",
            Self::PostDefconfig => "POST_DEFCONFIG_CMDS",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.variable())
    }
}
