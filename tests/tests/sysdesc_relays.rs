//! Host tests of `mksys` for relays: shared notifications and filter rules.
//!
//! Each compiles TOML text with `scenarios::sysdesc::compile` and asserts the packed
//! records or the exact `file:line: entry: message` lines (docs/system.md).

use abi::system::{FilterRule, RuleDirection, RuleProtocol, SystemDesc, NONE};
use scenarios::sysdesc::compile;

fn programs() -> Vec<String> {
    ["filter", "copier", "httpd"].iter().map(|s| s.to_string()).collect()
}

/// A filter serving a copier: two notification channels the filter waits on.
const BASE: &str = r#"[system]
name = "t"
min_ram = "64M"

[components.filter]
program = "filter"
budget = "1M"

[components.copier]
program = "copier"
budget = "1M"

[components.httpd]
program = "httpd"
budget = "1M"

[channels.up-rx]
kind = "notification"
client = "copier"
server = "filter"
badge = 1

[channels.down-tx]
kind = "notification"
client = "httpd"
server = "filter"
badge = 2
shares = "up-rx"
"#;

fn errors(text: &str) -> Vec<String> {
    match compile("t.toml", text, Some(&programs())) {
        Ok(_) => panic!("accepted a bad description:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn a_shared_notification_and_rules_are_packed() {
    let text = format!(
        "{BASE}\n[filters.web]\nfilter = \"filter\"\nallow_in = [\"arp\", \"tcp:80\"]\nallow_out = [\"udp:1000-2000\"]\naddress = \"10.0.2.15\"\n"
    );
    let bytes = compile("t.toml", &text, Some(&programs())).unwrap();
    let d = SystemDesc::parse(&bytes).unwrap();
    let shares: Vec<u16> = d.channels().iter().map(|c| c.shares).collect();
    assert_eq!(shares, [NONE, 0], "down-tx shares up-rx's object");
    let rules: Vec<FilterRule> = d.filter_rules().iter().collect();
    let plain: Vec<(u8, u8, u16, u16)> =
        rules.iter().map(|r| (r.direction, r.protocol, r.port_first, r.port_last)).collect();
    let (i, o) = (RuleDirection::In.raw(), RuleDirection::Out.raw());
    assert_eq!(
        plain,
        [
            (i, RuleProtocol::Address.raw(), 0x0a00, 0x020f),
            (i, RuleProtocol::Arp.raw(), 0, 0),
            (i, RuleProtocol::Tcp.raw(), 80, 80),
            (o, RuleProtocol::Udp.raw(), 1000, 2000)
        ]
    );
    assert_eq!(rules[0].address(), Some([10, 0, 2, 15]), "the client's address comes first");
    assert!(rules.iter().all(|r| d.str(r.client) == "web" && r.filter == 0));
}

#[test]
fn bad_shares_are_refused_with_their_line() {
    let text = BASE.replace("shares = \"up-rx\"", "shares = \"nothing\"");
    assert_eq!(errors(&text), ["t.toml:28: channel 'down-tx': shares 'nothing', which is not a channel"]);
    let text = BASE.replace("client = \"httpd\"\nserver = \"filter\"", "client = \"filter\"\nserver = \"httpd\"");
    assert_eq!(errors(&text), ["t.toml:28: channel 'down-tx': shares 'up-rx', whose server is another component"]);
    let text = BASE.replace("badge = 2", "badge = 3");
    assert_eq!(
        errors(&text),
        ["t.toml:28: channel 'down-tx': badge 0x3 and 'up-rx''s (0x1) must be non-zero and share no bit: the server tells them apart by badge, and an unbadged client could mint any badge"]
    );
    let text = BASE.replace("kind = \"notification\"\nclient = \"httpd\"", "kind = \"endpoint\"\nclient = \"httpd\"");
    assert_eq!(
        errors(&text),
        ["t.toml:28: channel 'down-tx': only notification channels share an object ('up-rx' or this is not one)"]
    );
}

#[test]
fn bad_rules_are_refused_with_their_line() {
    let with = |rules: &str| format!("{BASE}\n[filters.web]\nfilter = \"filter\"\n{rules}\naddress = \"10.0.2.15\"\n");
    assert_eq!(
        errors(&with("allow_in = [\"sctp:9\"]")),
        ["t.toml:32: filter 'web': rule 'sctp:9': protocol 'sctp' is not arp, icmp, tcp or udp"]
    );
    assert_eq!(
        errors(&with("allow_in = [\"tcp:90-80\"]")),
        ["t.toml:32: filter 'web': rule 'tcp:90-80': port range 90-80 is empty"]
    );
    assert_eq!(
        errors(&with("allow_out = [\"icmp:8\"]")),
        ["t.toml:32: filter 'web': rule 'icmp:8': icmp has no ports"]
    );
    assert_eq!(
        errors(&with("")),
        ["t.toml:31: filter 'web': no rules: allow_in and allow_out are both empty (the client would get and send nothing)"]
    );
    let text = format!("{BASE}\n[filters.web]\nfilter = \"ghost\"\nallow_in = [\"arp\"]\naddress = \"10.0.2.15\"\n");
    assert_eq!(errors(&text), ["t.toml:31: filter 'web': filter 'ghost' is not a component"]);
    let text = format!("{BASE}\n[filters.web]\nfilter = \"filter\"\nallow_in = [\"arp\"]\nallow_all = true\n");
    assert!(errors(&text)[0].contains("unknown field `allow_all`"), "{:?}", errors(&text));
    // The client's address: required (so it cannot claim another's), and IPv4.
    let text = format!("{BASE}\n[filters.web]\nfilter = \"filter\"\nallow_in = [\"arp\"]\n");
    assert_eq!(
        errors(&text),
        ["t.toml:31: filter 'web': no address: give the client's IPv4 address (address = \"10.0.2.15\"), so it cannot claim another's"]
    );
    let text = format!("{BASE}\n[filters.web]\nfilter = \"filter\"\nallow_in = [\"arp\"]\naddress = \"10.0.2\"\n");
    assert_eq!(errors(&text), ["t.toml:33: filter 'web': address '10.0.2' is not an IPv4 address"]);
}
