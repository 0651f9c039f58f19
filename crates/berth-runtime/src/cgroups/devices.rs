//! Validation of OCI device cgroup rules into one internal form, shared by
//! the v1 writer (devices.allow / devices.deny) and the v2 eBPF generator.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::error::CgroupError;

/// Access bit for creating the device node; the values are the kernel's
/// `BPF_DEVCG_ACC_*`, so the eBPF program can use them as they are.
pub(super) const ACC_MKNOD: u8 = 1;
/// Access bit for reading.
pub(super) const ACC_READ: u8 = 2;
/// Access bit for writing.
pub(super) const ACC_WRITE: u8 = 4;
/// All access bits.
pub(super) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Which devices a rule's type selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DevKind {
    /// Every device, block and character.
    All,
    /// Block devices.
    Block,
    /// Character devices.
    Char,
}

/// One validated device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DeviceRule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// Device type selected.
    pub kind: DevKind,
    /// Major number; `None` is a wildcard.
    pub major: Option<u32>,
    /// Minor number; `None` is a wildcard.
    pub minor: Option<u32>,
    /// `ACC_*` bits; never zero.
    pub access: u8,
}

impl DeviceRule {
    /// Whether the rule covers every device and every access, so that no
    /// earlier rule can matter after it.
    pub(super) fn is_total(&self) -> bool {
        self.kind == DevKind::All && self.access == ACC_ALL
    }

    /// The rule in the v1 devices.allow / devices.deny syntax,
    /// `TYPE MAJOR:MINOR ACCESS` with `*` wildcards.
    pub(super) fn v1_line(&self) -> String {
        let kind = match self.kind {
            DevKind::All => 'a',
            DevKind::Block => 'b',
            DevKind::Char => 'c',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        let mut access = String::new();
        for (bit, ch) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(ch);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

/// Validates the spec's rule list, keeping its order.
pub(super) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| parse_rule(i, r))
        .collect()
}

fn parse_rule(index: usize, r: &LinuxDeviceCgroup) -> Result<DeviceRule, CgroupError> {
    let invalid = |field, value: String, reason| CgroupError::InvalidDeviceRule {
        index,
        field,
        value,
        reason,
    };
    let kind = match r.typ().unwrap_or_default() {
        LinuxDeviceType::A => DevKind::All,
        LinuxDeviceType::B => DevKind::Block,
        // 'u' (unbuffered character) is a character device to the kernel.
        LinuxDeviceType::C | LinuxDeviceType::U => DevKind::Char,
        LinuxDeviceType::P => {
            return Err(invalid(
                "type",
                "p".into(),
                "FIFOs are not subject to the device cgroup; use a, b or c",
            ));
        }
    };
    // Negative numbers are how some configurations spell the wildcard.
    let number = |field, n: Option<i64>| match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        // The eBPF immediate is a signed 32-bit value.
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| i32::try_from(*n).is_ok())
            .map(Some)
            .ok_or_else(|| invalid(field, n.to_string(), "device number out of range")),
    };
    let major = number("major", r.major())?;
    let minor = number("minor", r.minor())?;
    let access = parse_access(r.access().as_deref())
        .map_err(|a| invalid("access", a, "access must be a combination of r, w and m"))?;
    Ok(DeviceRule {
        allow: r.allow(),
        kind,
        major,
        minor,
        access,
    })
}

/// Parses an access string; absent or empty means all access, as in the
/// spec's default.
fn parse_access(access: Option<&str>) -> Result<u8, String> {
    let s = access.unwrap_or("");
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    s.chars().try_fold(0u8, |acc, c| match c {
        'r' => Ok(acc | ACC_READ),
        'w' => Ok(acc | ACC_WRITE),
        'm' => Ok(acc | ACC_MKNOD),
        _ => Err(s.to_owned()),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    /// Builds a spec rule; `typ` is one of a, b, c, u, p.
    pub(in super::super) fn spec_rule(
        allow: bool,
        typ: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let typ = match typ {
            'a' => LinuxDeviceType::A,
            'b' => LinuxDeviceType::B,
            'c' => LinuxDeviceType::C,
            'u' => LinuxDeviceType::U,
            _ => LinuxDeviceType::P,
        };
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    #[test]
    fn v1_lines() {
        let rules = parse_rules(&[
            spec_rule(false, 'a', None, None, "rwm"),
            spec_rule(true, 'c', Some(1), Some(3), "mwr"),
            spec_rule(true, 'b', Some(8), None, "r"),
            spec_rule(true, 'u', Some(-1), Some(5), ""),
        ])
        .unwrap();
        let lines: Vec<_> = rules.iter().map(DeviceRule::v1_line).collect();
        assert_eq!(lines, ["a *:* rwm", "c 1:3 rwm", "b 8:* r", "c *:5 rwm"]);
        assert!(rules[0].is_total() && !rules[0].allow);
        assert!(!rules[1].is_total());
    }

    #[test]
    fn bad_rules_name_the_field() {
        let e = parse_rules(&[spec_rule(true, 'c', Some(1), Some(3), "rx")]).unwrap_err();
        assert!(e.to_string().contains("devices[0].access"), "{e}");
        let e = parse_rules(&[
            spec_rule(true, 'c', None, None, "r"),
            spec_rule(true, 'p', None, None, "r"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("devices[1].type"), "{e}");
        let e = parse_rules(&[spec_rule(true, 'c', Some(1 << 40), None, "r")]).unwrap_err();
        assert!(e.to_string().contains("major"), "{e}");
    }
}
