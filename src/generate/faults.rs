//! Fault injection: invalid lines of every SPEC §1 class (orphan ticket events are in
//! `orphans`, verbatim duplicates in `duplicates`).

use rand::Rng;

use super::json::push_padded;
use super::tables::{T_BILLING, T_LOGISTICS, T_TECH};
use super::Generator;
use crate::ts::SECOND;

impl Generator {
    /// Event time of an injected line: just before the current stream time.
    pub(super) fn inject_time(&mut self) -> i64 {
        (self.now - self.rng.gen_range(0..2 * SECOND)).max(self.start_ms)
    }

    /// A valid, side-effect-free line (NPS or order) at `t`, for truncation.
    fn write_plain(&mut self, t: i64, cust: u32) {
        if self.chance(0.5) {
            self.out.begin(&mut self.rng, "survey.nps", t, cust);
            let s = self.rng.gen_range(0..=10u64);
            self.out.num("score", s);
        } else {
            self.out.begin(&mut self.rng, "order.placed", t, cust);
            self.out.order(self.next_order);
            self.next_order += 1;
            self.out.raw("amount", "39.90");
        }
        self.out.text.push('}');
    }

    /// An envelope at `t` with the given type; `time` replaced by `time_json` when given.
    fn begin_custom(&mut self, ty: &str, t: i64, cust: u32, time_json: Option<&str>) {
        match time_json {
            None => self.out.begin(&mut self.rng, ty, t, cust),
            Some(tj) => {
                self.out.begin(&mut self.rng, ty, t, cust);
                // Rewrite the time field.
                let start = self.out.text.find("\"time\":").unwrap_or(0);
                let end = self.out.text[start..]
                    .find(",\"customer\"")
                    .map(|e| start + e);
                if let Some(end) = end {
                    self.out
                        .text
                        .replace_range(start..end, &format!("\"time\":{tj}"));
                }
            }
        }
    }

    pub(super) fn write_invalid(&mut self) {
        let t = self.inject_time();
        let slot = self.pick_slot();
        let cust = self.customers[slot as usize].no;
        let class = self.rng.gen_range(0..9u32);
        let v = self.rng.gen_range(0..100u32);
        match class {
            // Not JSON (or not a JSON object).
            0 => match v % 8 {
                0 => {
                    self.out.begin(&mut self.rng, "ticket.created", t, cust);
                    self.out.text.clear();
                    self.out
                        .text
                        .push_str("ERROR upstream timeout while exporting ticket events");
                }
                1 => {
                    self.out.begin(&mut self.rng, "ticket.created", t, cust);
                    self.out.text.clear();
                    self.out.text.push_str("{type:ticket.created,customer:c");
                    push_padded(&mut self.out.text, cust as u64, 7);
                    self.out.text.push('}');
                }
                2 => {
                    self.write_plain(t, cust);
                    // trailing comma
                    self.out.text.pop();
                    self.out.text.push_str(",}");
                }
                3 => {
                    self.write_plain(t, cust);
                    let s = self.out.text.replace('"', "'");
                    self.out.text = s;
                }
                4 => {
                    self.out.begin(&mut self.rng, "survey.csat", t, cust);
                    self.out.raw("score", "04");
                    self.out.text.push('}');
                }
                5 => {
                    self.out.begin(&mut self.rng, "order.placed", t, cust);
                    self.out.order(self.next_order);
                    self.next_order += 1;
                    self.out.raw("amount", "NaN");
                    self.out.text.push('}');
                }
                6 => {
                    self.write_plain(t, cust);
                    self.out.text.insert(0, '[');
                    self.out.text.push(']');
                }
                _ => {
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    self.out.text.clear();
                    self.out
                        .text
                        .push_str("<event type=\"survey.nps\" customer=\"c");
                    push_padded(&mut self.out.text, cust as u64, 7);
                    self.out.text.push_str("\" score=\"9\"/>");
                }
            },
            // Truncated JSON.
            1 => {
                self.write_plain(t, cust);
                let len = self.out.text.len();
                let cut = self.rng.gen_range(1..len - 1);
                self.out.text.truncate(cut);
            }
            // Missing required field.
            2 => match v % 10 {
                0 => {
                    self.out.begin(&mut self.rng, "ticket.created", t, cust);
                    self.out.ticket(self.next_ticket + 5_000_000_000);
                    self.out.str("channel", "email");
                    self.out.text.push('}');
                }
                1 => {
                    self.out.begin(&mut self.rng, "survey.csat", t, cust);
                    self.out.text.push('}');
                }
                2 => {
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    self.out.raw("score", "null");
                    self.out.text.push('}');
                }
                3 => {
                    self.out.begin(&mut self.rng, "order.placed", t, cust);
                    self.out.order(self.next_order);
                    self.next_order += 1;
                    self.out.text.push('}');
                }
                4 => {
                    self.out.begin(&mut self.rng, "contact.handled", t, cust);
                    self.out.agent(T_TECH, 3);
                    self.out.str("channel", "phone");
                    self.out.text.push('}');
                }
                5 => {
                    self.out.begin(&mut self.rng, "ticket.message", t, cust);
                    self.out.ticket(self.next_ticket.saturating_sub(1).max(1));
                    self.out.text.push('}');
                }
                6 => {
                    // no customer
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    let at = self
                        .out
                        .text
                        .find(",\"customer\"")
                        .unwrap_or(self.out.text.len());
                    self.out.text.truncate(at);
                    self.out.num("score", 8);
                    self.out.text.push('}');
                }
                7 => {
                    // no time
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    let a = self.out.text.find(",\"time\"").unwrap_or(0);
                    let b = self.out.text.find(",\"customer\"").unwrap_or(a);
                    self.out.text.replace_range(a..b, "");
                    self.out.num("score", 8);
                    self.out.text.push('}');
                }
                8 => {
                    // no id
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    let b = self.out.text.find("\"type\"").unwrap_or(1);
                    self.out.text.replace_range(1..b, "");
                    self.out.num("score", 8);
                    self.out.text.push('}');
                }
                _ => {
                    // no type
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    let a = self.out.text.find(",\"type\"").unwrap_or(0);
                    let b = self.out.text.find(",\"time\"").unwrap_or(a);
                    self.out.text.replace_range(a..b, "");
                    self.out.num("score", 8);
                    self.out.text.push('}');
                }
            },
            // Wrong type.
            3 => match v % 9 {
                0 => {
                    self.out.begin(&mut self.rng, "survey.csat", t, cust);
                    self.out.str("score", "4");
                    self.out.text.push('}');
                }
                1 => {
                    self.out.begin(&mut self.rng, "survey.csat", t, cust);
                    self.out.raw("score", "4.0");
                    self.out.text.push('}');
                }
                2 => {
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    self.out.raw("score", "8.5");
                    self.out.text.push('}');
                }
                3 => {
                    self.out.begin(&mut self.rng, "order.placed", t, cust);
                    self.out.order(self.next_order);
                    self.next_order += 1;
                    self.out.str("amount", "19.99");
                    self.out.text.push('}');
                }
                4 => {
                    self.out.begin(&mut self.rng, "ticket.message", t, cust);
                    self.out.ticket(self.next_ticket.saturating_sub(1).max(1));
                    self.out.str("author", "agent");
                    self.out.agent(T_BILLING, 1);
                    self.out.str("public", "false");
                    self.out.text.push('}');
                }
                5 => {
                    self.out.begin(&mut self.rng, "contact.handled", t, cust);
                    self.out.agent(T_TECH, 2);
                    self.out.str("channel", "chat");
                    self.out.str("handle_seconds", "300");
                    self.out.text.push('}');
                }
                6 => {
                    self.out.begin(&mut self.rng, "ticket.reopened", t, cust);
                    self.out.raw("ticket", "12345");
                    self.out.text.push('}');
                }
                7 => {
                    let ms = t.to_string();
                    self.begin_custom("survey.nps", t, cust, Some(&ms));
                    self.out.num("score", 7);
                    self.out.text.push('}');
                }
                _ => {
                    self.out.begin(&mut self.rng, "customer.churned", t, cust);
                    let a = self.out.text.find("\"customer\":\"").unwrap_or(0);
                    self.out.text.truncate(a);
                    self.out.text.push_str("\"customer\":");
                    push_padded(&mut self.out.text, cust as u64, 1);
                    self.out.text.push('}');
                }
            },
            // Unknown type.
            4 => {
                let ty = [
                    "ticket.deleted",
                    "order.cancelled",
                    "Ticket.Created",
                    "survey.Csat",
                    "ticket_created",
                    "",
                ][(v % 6) as usize];
                self.out.begin(&mut self.rng, ty, t, cust);
                self.out.ticket(self.next_ticket.saturating_sub(1).max(1));
                self.out.text.push('}');
            }
            // Unknown enumeration value.
            5 => match v % 7 {
                0..=2 => {
                    let (ch, pr) = [("fax", "normal"), ("Email", "high"), ("email", "URGENT")]
                        [(v % 7) as usize];
                    self.out.begin(&mut self.rng, "ticket.created", t, cust);
                    self.out.ticket(self.next_ticket + 5_000_000_000 + v as u64);
                    self.out.str("channel", ch);
                    self.out.str("priority", pr);
                    self.out.str("team", "billing");
                    self.out.text.push('}');
                }
                3 => {
                    self.out.begin(&mut self.rng, "ticket.created", t, cust);
                    self.out.ticket(self.next_ticket + 6_000_000_000);
                    self.out.str("channel", "chat");
                    self.out.str("priority", "critical");
                    self.out.text.push('}');
                }
                4 => {
                    self.out.begin(&mut self.rng, "ticket.created", t, cust);
                    self.out.ticket(self.next_ticket + 7_000_000_000);
                    self.out.str("channel", "phone");
                    self.out.str("priority", "low");
                    self.out.str("category", "refund");
                    self.out.text.push('}');
                }
                5 => {
                    self.out.begin(&mut self.rng, "ticket.message", t, cust);
                    self.out.ticket(self.next_ticket.saturating_sub(1).max(1));
                    self.out.str("author", "bot");
                    self.out.text.push('}');
                }
                _ => {
                    self.out.begin(&mut self.rng, "contact.handled", t, cust);
                    self.out.agent(T_LOGISTICS, 4);
                    self.out.str("channel", "sms");
                    self.out.raw("handle_seconds", "120.5");
                    self.out.text.push('}');
                }
            },
            // Out-of-range value.
            6 => {
                let (ty, field, val) = [
                    ("survey.csat", "score", "0"),
                    ("survey.csat", "score", "6"),
                    ("survey.nps", "score", "11"),
                    ("survey.nps", "score", "-1"),
                    ("survey.ces", "score", "0"),
                    ("survey.ces", "score", "8"),
                    ("contact.handled", "handle_seconds", "-12.5"),
                    ("order.placed", "amount", "-5.00"),
                ][(v % 8) as usize];
                self.out.begin(&mut self.rng, ty, t, cust);
                match ty {
                    "contact.handled" => {
                        self.out.agent(T_BILLING, 5);
                        self.out.str("channel", "phone");
                    }
                    "order.placed" => {
                        self.out.order(self.next_order);
                        self.next_order += 1;
                    }
                    _ => {}
                }
                self.out.raw(field, val);
                self.out.text.push('}');
            }
            // Bad timestamp.
            7 => {
                let mut good = String::new();
                self.out.write_utc(&mut good, t); // 2026-11-22T10:00:00.250Z
                let bad = match v % 8 {
                    0 => good[..good.len() - 1].to_string(),
                    1 => good.replacen('T', " ", 1),
                    2 => format!("{}-13{}", &good[..4], &good[7..]),
                    3 => format!("{}-02-30{}", &good[..4], &good[10..]),
                    4 => format!("{}T25{}", &good[..10], &good[13..]),
                    5 => format!("{}+0200", &good[..good.len() - 1]),
                    6 => good[..10].to_string(),
                    _ => "yesterday".to_string(),
                };
                let tj = format!("\"{bad}\"");
                self.begin_custom("survey.csat", t, cust, Some(&tj));
                self.out.num("score", 4);
                self.out.text.push('}');
            }
            // String too long or empty.
            _ => match v % 6 {
                0 => {
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    let b = self.out.text.find("\",\"type\"").unwrap_or(7);
                    let long = format!("e{}", "9".repeat(128));
                    self.out.text.replace_range(7..b, &long);
                    self.out.num("score", 9);
                    self.out.text.push('}');
                }
                1 => {
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    let b = self.out.text.find("\",\"type\"").unwrap_or(7);
                    self.out.text.replace_range(7..b, "");
                    self.out.num("score", 9);
                    self.out.text.push('}');
                }
                2 => {
                    self.out.begin(&mut self.rng, "survey.nps", t, cust);
                    let a = self.out.text.find("\"customer\":\"").unwrap_or(0) + 12;
                    self.out.text.truncate(a);
                    self.out.text.push_str(&"c".repeat(129));
                    self.out.text.push('"');
                    self.out.num("score", 9);
                    self.out.text.push('}');
                }
                3 => {
                    self.out.begin(&mut self.rng, "ticket.created", t, cust);
                    self.out.ticket(self.next_ticket + 8_000_000_000);
                    self.out.str("channel", "email");
                    self.out.str("priority", "normal");
                    let team = "customer-care-".repeat(5); // 70 chars
                    self.out.str("team", &team);
                    self.out.text.push('}');
                }
                4 => {
                    self.out.begin(&mut self.rng, "customer.churned", t, cust);
                    let reason = "too expensive; ".repeat(18); // 270 chars
                    self.out.str("reason", &reason);
                    self.out.text.push('}');
                }
                _ => {
                    self.out.begin(&mut self.rng, "order.returned", t, cust);
                    let order = format!("o{}", "1".repeat(128));
                    self.out.str("order", &order);
                    self.out.text.push('}');
                }
            },
        }
        self.out.time_ms = t;
    }
}
