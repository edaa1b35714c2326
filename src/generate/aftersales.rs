//! After-sales and contact lines: handled contacts, outbound contacts, orders, returns,
//! warranty claims and churn, with what each one sets in motion (a return or a claim may open
//! a ticket, an order may later be returned or claimed, a churned customer is replaced).
//!
//! These events are not part of a ticket's life cycle, are stamped with producer clock skew,
//! and are written the same way whether a background process or an earlier event caused them.

use rand::Rng;

use super::json::{push3, push_padded};
use super::sim::{Customer, Ev};
use super::tables::{Team, CHURN_REASONS, PRODUCTS, RETURN_REASONS};
use super::Generator;
use crate::event::{Category, Channel, EventType};
use crate::ts::{DAY, HOUR, MINUTE};

/// Who a contact or a ticket is between: a customer, and an agent of a team, on a channel.
#[derive(Debug, Clone, Copy)]
pub(super) struct Contact {
    pub(super) cust: u32,
    pub(super) channel: Channel,
    pub(super) team: Team,
    pub(super) agent: u8,
}

impl Generator {
    /// Writes a `contact.handled` (a call, chat or visit, or an email worked, that has ended;
    /// `ticket` 0: none); `handle_seconds` has 0, 1 or 3 decimals.
    pub(super) fn write_handled(&mut self, t: i64, with: Contact, handle_ms: u32, ticket: u64) {
        let t = self.skew(t);
        self.begin(EventType::ContactHandled, t, with.cust);
        self.out.agent(with.team, with.agent);
        self.out.str("channel", with.channel.as_str());
        self.out.field_name("handle_seconds");
        let ms = handle_ms as u64;
        let text = &mut self.out.text;
        push_padded(text, ms / 1000, 1);
        match self.rng.gen_range(0..10) {
            0 | 1 => {}
            2..=6 => {
                text.push('.');
                push_padded(text, ms % 1000 / 100, 1);
            }
            _ => {
                text.push('.');
                push3(text, (ms % 1000) as u32);
            }
        }
        if ticket != 0 {
            self.out.ticket(ticket);
        }
        self.end();
    }

    /// Writes a `customer.contacted`: an outbound contact (check-in or service recovery).
    pub(super) fn write_contacted(&mut self, t: i64, c: Contact) {
        let t = self.skew(t);
        self.begin(EventType::CustomerContacted, t, c.cust);
        self.out.agent(c.team, c.agent);
        self.out.str("channel", c.channel.as_str());
        self.end();
    }

    /// How long a contact on `channel` takes (ms): log-normal, 15 s to 4 h.
    pub(super) fn handle_ms(&mut self, channel: Channel) -> u32 {
        let median = match channel {
            Channel::Phone => 420.0,
            Channel::Chat => 540.0,
            Channel::InPerson => 600.0,
            _ => 240.0,
        };
        self.lognormal(median * 1000.0, 0.5).clamp(15_000, 4 * HOUR) as u32
    }

    /// Writes an `order.placed` with a new order number and a 2-decimal amount; the order may
    /// later be returned or claimed under warranty.
    pub(super) fn write_order(&mut self, t: i64, slot: u32, cust: u32) {
        let t = self.skew(t);
        let order = self.next_order;
        self.next_order += 1;
        self.begin(EventType::OrderPlaced, t, cust);
        self.out.order(order);
        let mut cents = self.lognormal(4500.0, 0.9).clamp(99, 5_000_000) as u64;
        if slot % 20 == 7 {
            cents *= 2; // VIP
        }
        self.out.field_name("amount");
        push_padded(&mut self.out.text, cents / 100, 1);
        self.out.text.push('.');
        push_padded(&mut self.out.text, cents % 100, 2);
        self.end();
        if self.chance(0.08) {
            let d = self.lognormal(6.0 * DAY as f64, 0.6).clamp(HOUR, 40 * DAY);
            self.queue.push(t + d, Ev::Return { slot, cust, order });
        }
        if self.chance(0.025) {
            let d = self.lognormal(45.0 * DAY as f64, 0.5).clamp(DAY, 120 * DAY);
            let order = if self.chance(0.8) { order } else { 0 };
            let product = if self.chance(0.9) {
                self.rng.gen_range(0..PRODUCTS.len()) as u8
            } else {
                u8::MAX
            };
            let claim = Ev::Warranty {
                slot,
                cust,
                order,
                product,
            };
            self.queue.push(t + d, claim);
        }
    }

    /// Writes an `order.returned`; a third of the returns open a `return` ticket.
    pub(super) fn write_return(&mut self, t: i64, slot: u32, cust: u32, order: u64) {
        let t = self.skew(t);
        self.begin(EventType::OrderReturned, t, cust);
        self.out.order(order);
        if self.chance(0.85) {
            let r = RETURN_REASONS[self.rng.gen_range(0..RETURN_REASONS.len())];
            self.out.str("reason", r);
        }
        self.end();
        if self.chance(0.35) {
            let d = self.lognormal(HOUR as f64, 1.0).max(MINUTE);
            self.follow_up_ticket(t + d, slot, cust, Category::Return);
        }
    }

    /// Writes a `warranty.claimed`; half of the claims open a `warranty` ticket.
    pub(super) fn write_warranty(&mut self, t: i64, slot: u32, cust: u32, order: u64, product: u8) {
        let t = self.skew(t);
        self.begin(EventType::WarrantyClaimed, t, cust);
        if order != 0 {
            self.out.order(order);
        }
        if product != u8::MAX {
            self.out.str("product", PRODUCTS[product as usize]);
        }
        self.end();
        // The claim is followed by a ticket, when the customer is still there.
        if self.chance(0.5) && self.present(slot, cust) {
            let d = self.lognormal(30.0 * MINUTE as f64, 1.0).max(MINUTE);
            self.follow_up_ticket(t + d, slot, cust, Category::Warranty);
        }
    }

    /// Schedules a ticket of `category` that the customer opens at `t` about an earlier line.
    fn follow_up_ticket(&mut self, t: i64, slot: u32, cust: u32, category: Category) {
        let ev = Ev::NewTicket {
            slot,
            cust,
            category,
        };
        self.queue.push(t, ev);
    }

    /// Writes a `customer.churned`; a new customer takes the slot.
    pub(super) fn write_churn(&mut self, t: i64, slot: u32, cust: u32, reason: u8) {
        let t = self.skew(t);
        self.begin(EventType::CustomerChurned, t, cust);
        if reason != u8::MAX {
            self.out.str("reason", CHURN_REASONS[reason as usize]);
        }
        self.end();
        let no = self.next_customer;
        self.next_customer += 1;
        self.customers[slot as usize] = Customer::new(no, &mut self.rng);
    }

    /// A churn reason (index into `CHURN_REASONS`), or `u8::MAX` for none given (20 %).
    pub(super) fn churn_reason(&mut self) -> u8 {
        if self.chance(0.8) {
            self.rng.gen_range(0..CHURN_REASONS.len()) as u8
        } else {
            u8::MAX
        }
    }
}
