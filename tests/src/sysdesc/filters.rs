//! Host checks of channel `shares` and filter rules (`[filters.x]`).
//!
//! Both are resolved after every channel and component is known, so they may name
//! entries later in the file.

use abi::system::{ChannelKind, FilterRule, RuleDirection, RuleProtocol, SystemParts, NAME_MAX, NONE};
use toml::Spanned;

use super::check::{in_file_order, Ctx, Names};
use super::model::SystemFile;

/// Sets `shares` of each channel that names another; checks the group rules.
pub(super) fn shares(ctx: &mut Ctx<'_>, p: &mut SystemParts, sys: &SystemFile) {
    let order: Vec<&String> = in_file_order(&sys.channels).into_iter().map(|(n, _)| n).collect();
    for (i, (name, ch)) in in_file_order(&sys.channels).into_iter().enumerate() {
        let Some(owner) = &ch.get_ref().shares else { continue };
        let entry = format!("channel '{name}'");
        let span = owner.span();
        let Some(j) = order.iter().position(|n| *n == owner.get_ref()) else {
            ctx.err(&span, &entry, format!("shares '{}', which is not a channel", owner.get_ref()));
            continue;
        };
        let notification = ChannelKind::Notification.raw();
        let (me, them) = (p.channels[i], p.channels[j]);
        if i == j {
            ctx.err(&span, &entry, "shares itself");
        } else if me.kind != notification || them.kind != notification {
            ctx.err(
                &span,
                &entry,
                format!("only notification channels share an object ('{}' or this is not one)", owner.get_ref()),
            );
        } else if me.server != them.server {
            ctx.err(&span, &entry, format!("shares '{}', whose server is another component", owner.get_ref()));
        } else if sys.channels[owner.get_ref()].get_ref().shares.is_some() {
            ctx.err(
                &span,
                &entry,
                format!("shares '{}', which itself shares another's object: name that one", owner.get_ref()),
            );
        } else if me.badge & them.badge != 0 || me.badge == 0 || them.badge == 0 {
            ctx.err(&span, &entry, format!("badge {:#x} and '{}''s ({:#x}) must be non-zero and share no bit: the server tells them apart by badge, and an unbadged client could mint any badge", me.badge, owner.get_ref(), them.badge));
        } else {
            p.channels[i].shares = j as u16;
        }
    }
    // Members of one group must have distinct badge bits too.
    for i in 0..p.channels.len() {
        let group = |k: usize| if p.channels[k].shares == NONE { k } else { usize::from(p.channels[k].shares) };
        let clash =
            (0..i).find(|&k| group(k) == group(i) && k != group(i) && p.channels[k].badge & p.channels[i].badge != 0);
        if let (Some(k), Some((name, ch))) = (clash, in_file_order(&sys.channels).get(i)) {
            let entry = format!("channel '{name}'");
            ctx.err(&ch.span(), &entry, format!("badge shares bits with '{}' in the same group", order[k]));
        }
    }
}

/// One rule's text: "arp", "icmp", "tcp", "udp", "tcp:80", "udp:1000-2000".
fn parse_rule(text: &str) -> Result<(RuleProtocol, u16, u16), String> {
    let (proto, ports) = match text.split_once(':') {
        Some((p, ports)) => (p.trim(), Some(ports.trim())),
        None => (text.trim(), None),
    };
    let protocol = match proto {
        "arp" => RuleProtocol::Arp,
        "icmp" => RuleProtocol::Icmp,
        "tcp" => RuleProtocol::Tcp,
        "udp" => RuleProtocol::Udp,
        _ => return Err(format!("rule '{text}': protocol '{proto}' is not arp, icmp, tcp or udp")),
    };
    let port = |s: &str| s.trim().parse::<u16>().map_err(|_| format!("rule '{text}': '{s}' is not a port (0..=65535)"));
    let (first, last) = match (protocol, ports) {
        (RuleProtocol::Arp | RuleProtocol::Icmp, Some(_)) => {
            return Err(format!("rule '{text}': {proto} has no ports"))
        }
        (RuleProtocol::Arp | RuleProtocol::Icmp, None) => (0, 0),
        (_, None) => (0, u16::MAX),
        (_, Some(range)) => match range.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(range)?, port(range)?),
        },
    };
    if first > last {
        return Err(format!("rule '{text}': port range {first}-{last} is empty"));
    }
    Ok((protocol, first, last))
}

/// Packs `[filters.<client>]` into filter rules.
pub(super) fn filter_rules(ctx: &mut Ctx<'_>, p: &mut SystemParts, sys: &SystemFile, names: &Names) {
    for (client, f) in in_file_order(&sys.filters) {
        let entry = format!("filter '{client}'");
        ctx.name(client, &f.span(), &entry, NAME_MAX);
        let f = f.get_ref();
        let Some(filter) = names.get(f.filter.get_ref()) else {
            ctx.err(&f.filter.span(), &entry, format!("filter '{}' is not a component", f.filter.get_ref()));
            continue;
        };
        if f.allow_in.is_empty() && f.allow_out.is_empty() {
            ctx.err(
                &f.filter.span(),
                &entry,
                "no rules: allow_in and allow_out are both empty (the client would get and send nothing)",
            );
        }
        let client_ref = p.strings.add(client);
        match &f.address {
            None => ctx.err(
                &f.filter.span(),
                &entry,
                "no address: give the client's IPv4 address (address = \"10.0.2.15\"), so it cannot claim another's",
            ),
            Some(a) => match a.get_ref().parse::<std::net::Ipv4Addr>() {
                Ok(ip) => p.filter_rules.push(FilterRule {
                    client: client_ref,
                    filter,
                    ..FilterRule::for_address(ip.octets())
                }),
                Err(_) => ctx.err(&a.span(), &entry, format!("address '{}' is not an IPv4 address", a.get_ref())),
            },
        }
        let lists: [(&Vec<Spanned<String>>, RuleDirection); 2] =
            [(&f.allow_in, RuleDirection::In), (&f.allow_out, RuleDirection::Out)];
        for (list, direction) in lists {
            for text in list {
                match parse_rule(text.get_ref()) {
                    Ok((protocol, port_first, port_last)) => p.filter_rules.push(FilterRule {
                        client: client_ref,
                        filter,
                        direction: direction.raw(),
                        protocol: protocol.raw(),
                        port_first,
                        port_last,
                    }),
                    Err(e) => ctx.err(&text.span(), &entry, e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        assert_eq!(parse_rule("tcp:80"), Ok((RuleProtocol::Tcp, 80, 80)));
        assert_eq!(parse_rule("udp:1000-2000"), Ok((RuleProtocol::Udp, 1000, 2000)));
        assert_eq!(parse_rule("udp"), Ok((RuleProtocol::Udp, 0, 65535)));
        assert_eq!(parse_rule("arp"), Ok((RuleProtocol::Arp, 0, 0)));
        assert!(parse_rule("icmp:7").is_err());
        assert!(parse_rule("sctp:7").is_err());
        assert!(parse_rule("tcp:70000").is_err());
        assert!(parse_rule("tcp:9-7").is_err());
        assert!(parse_rule("tcp:").is_err());
    }
}
