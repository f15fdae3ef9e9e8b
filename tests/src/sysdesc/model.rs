//! The TOML form of a system description, as serde reads it (with spans for lines).
//!
//! Numbers are read as `i64` and sizes as text or integers so the checker, not serde,
//! reports a value out of range with the entry's name. Unknown keys are errors.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole `systems/<name>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemFile {
    /// `[system]`.
    pub system: Spanned<SystemSection>,
    /// `[components.<name>]`.
    #[serde(default)]
    pub components: BTreeMap<String, Spanned<ComponentToml>>,
    /// `[channels.<name>]`.
    #[serde(default)]
    pub channels: BTreeMap<String, Spanned<ChannelToml>>,
    /// `[regions.<name>]`.
    #[serde(default)]
    pub regions: BTreeMap<String, Spanned<RegionToml>>,
    /// `[devices.<name>]`.
    #[serde(default)]
    pub devices: BTreeMap<String, Spanned<DeviceToml>>,
    /// `[filters.<client>]`: a filter component's rules for one client connection.
    #[serde(default)]
    pub filters: BTreeMap<String, Spanned<FilterToml>>,
    /// `[isa.<name>]`: legacy devices with I/O ports and an ISA IRQ (no PCI, no DMA).
    #[serde(default)]
    pub isa: BTreeMap<String, Spanned<IsaToml>>,
}

/// `[system]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSection {
    /// The system's name.
    pub name: Spanned<String>,
    /// Least RAM the system needs ("256M").
    pub min_ram: Spanned<Size>,
    /// `"init"` (default) or a component name.
    pub supervisor: Option<Spanned<String>>,
}

/// A size: bytes as an integer, or text with a K/M/G suffix ("64K").
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// Plain bytes.
    Bytes(i64),
    /// "4K", "2M", "1G", "4096".
    Text(String),
}

impl Size {
    /// The size in bytes, or why not.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            Size::Bytes(b) => u64::try_from(*b).map_err(|_| format!("size {b} is negative")),
            Size::Text(t) => {
                let t = t.trim();
                let (digits, shift) = match t.chars().last() {
                    Some('K' | 'k') => (&t[..t.len() - 1], 10),
                    Some('M' | 'm') => (&t[..t.len() - 1], 20),
                    Some('G' | 'g') => (&t[..t.len() - 1], 30),
                    _ => (t, 0),
                };
                let n: u64 =
                    digits.trim().parse().map_err(|_| format!("'{t}' is not a size (like 4096, 64K, 2M, 1G)"))?;
                n.checked_mul(1 << shift).ok_or_else(|| format!("size '{t}' is too large"))
            }
        }
    }
}

/// `faults = { handler = "...", policy = "...", limit = N }`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsToml {
    /// Component told of faults (default: init, which logs).
    pub handler: Option<String>,
    /// "log" (default), "restart", "cut-off".
    pub policy: Option<String>,
    /// Most restarts (default 3 under "restart").
    pub limit: Option<i64>,
}

/// One name or a list of names.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Names {
    /// `"edu"`.
    One(String),
    /// `["edu", "nic"]`.
    Many(Vec<String>),
}

impl Names {
    /// The names in order.
    pub fn list(&self) -> Vec<String> {
        match self {
            Names::One(n) => vec![n.clone()],
            Names::Many(v) => v.clone(),
        }
    }
}

/// `[components.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentToml {
    /// Program (boot image entry) it runs.
    pub program: Spanned<String>,
    /// "normal" (default), "iommu-server", "management", "driver".
    pub role: Option<Spanned<String>>,
    /// Devices it drives (another way to say `driver = ` on the device).
    pub drives: Option<Spanned<Names>>,
    /// Priority (default 100).
    pub priority: Option<Spanned<i64>>,
    /// Maximum controlled priority (default: its priority).
    pub mcp: Option<Spanned<i64>>,
    /// Memory budget.
    pub budget: Spanned<Size>,
    /// CNode radix (default 10).
    pub cnode_bits: Option<Spanned<i64>>,
    /// Stack (default 16K).
    pub stack: Option<Spanned<Size>>,
    /// Heap (default 64K).
    pub heap: Option<Spanned<Size>>,
    /// Fault handling of its CPU faults.
    pub faults: Option<Spanned<FaultsToml>>,
}

/// `[channels.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelToml {
    /// "endpoint" or "notification".
    pub kind: Spanned<String>,
    /// Sender / signaller.
    pub client: Spanned<String>,
    /// Receiver / waiter.
    pub server: Spanned<String>,
    /// Badge of the client's cap (default 0).
    pub badge: Option<Spanned<i64>>,
    /// Another notification channel of the same server whose object this one shares.
    pub shares: Option<Spanned<String>>,
}

/// `[filters.<client>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterToml {
    /// The filter component applying the rules.
    pub filter: Spanned<String>,
    /// What may reach the client: "arp", "icmp", "tcp", "udp", "tcp:80", "udp:1000-2000".
    #[serde(default)]
    pub allow_in: Vec<Spanned<String>>,
    /// What the client may send (same forms; ports are destination ports).
    #[serde(default)]
    pub allow_out: Vec<Spanned<String>>,
}

/// One map of a region.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapToml {
    /// Component that maps it.
    pub component: String,
    /// Read-write (default false).
    #[serde(default)]
    pub writable: bool,
    /// Address (default: init chooses).
    pub vaddr: Option<i64>,
}

/// `[regions.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionToml {
    /// Size.
    pub size: Spanned<Size>,
    /// Who maps it.
    #[serde(default)]
    pub maps: Vec<Spanned<MapToml>>,
    /// Components that may only read it.
    #[serde(default)]
    pub readonly: Vec<Spanned<String>>,
}

/// `match = { pci = "00:03.0" }`, `{ vendor, device }` or `{ class, subclass }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchToml {
    /// "[segment:]bus:dev.fn" in hex.
    pub pci: Option<String>,
    /// Vendor id.
    pub vendor: Option<i64>,
    /// Device id.
    pub device: Option<i64>,
    /// Class code.
    pub class: Option<i64>,
    /// Subclass.
    pub subclass: Option<i64>,
}

/// `[devices.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceToml {
    /// How to find it.
    #[serde(rename = "match")]
    pub match_: Spanned<MatchToml>,
    /// Component that drives it.
    pub driver: Option<Spanned<String>>,
    /// DMA pool (default 0).
    pub dma_pool: Option<Spanned<Size>>,
    /// IOVA bits the device can address (default 64).
    pub dma_mask_bits: Option<Spanned<i64>>,
    /// MSI vectors (default 0).
    pub msis: Option<Spanned<i64>>,
    /// I/O port ranges `[first, last]`.
    #[serde(default)]
    pub ports: Vec<Spanned<Vec<i64>>>,
    /// Fault handling of its DMA faults.
    pub faults: Option<Spanned<FaultsToml>>,
}

/// `[isa.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsaToml {
    /// I/O port ranges `[first, last]` (at least one).
    pub ports: Spanned<Vec<Spanned<Vec<i64>>>>,
    /// ISA interrupt line 0..=15 (none: the component polls).
    pub irq: Option<Spanned<i64>>,
    /// Component that gets the ports and the line.
    pub component: Spanned<String>,
}
