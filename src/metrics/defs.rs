//! Every cxstream metric family as data: name, help text, kind, label names and bucket bounds.
//!
//! The names and labels are the SPEC §6 contract with dashboards and alert rules, so they are
//! written once, here, grouped as SPEC §6 groups them; [`registry`](super::registry)
//! registers the table, and code refers to a family by its [`Id`]. Adding a metric is one
//! [`Id`] and one row.

use crate::config::Config;

use super::buckets;

/// A metric family, by its row in [`DEFS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Id {
    TicketsCreated,
    TicketsSolved,
    TicketsFirstSolved,
    TicketsFcr,
    TicketsReopened,
    TicketsEscalated,
    FirstResponseSeconds,
    ResolutionSeconds,
    HandleSeconds,
    SlaAchieved,
    SlaBreached,
    CsatResponses,
    NpsResponses,
    CesResponses,
    Orders,
    OrderRevenue,
    Returns,
    WarrantyClaims,
    CustomersChurned,
    ChurnSignals,
    ChurnSignalOutcomes,
    RecoveryCases,
    RecoveryAnswerSeconds,
    PostServiceOutcomes,
    OpenTickets,
    SlaBreachedOpenTickets,
    CustomersAtRisk,
    RecoveryOpenCases,
    WindowFirstResponseSeconds,
    WindowResolutionSeconds,
    WindowFcrRatio,
    WindowCsatRatio,
    WindowNps,
    Events,
    EventsInvalid,
    EventsDuplicate,
    EventsLate,
    EventsOrphan,
    WindowLateContributions,
    StateEvictions,
    OutputRecords,
    ConsumerLag,
    Watermark,
    ProcessingSeconds,
    StateTickets,
    StateCustomers,
    StateAftersalesCustomers,
    StateScheduledItems,
    StateEventIds,
    StateWindowAggregates,
    LabelOverflow,
    CheckpointSeconds,
    CheckpointBytes,
    RestoreSeconds,
    RestoredPartitions,
    MergePendingWindows,
    PartitionWatermark,
    CheckpointAge,
    OutputErrors,
    OutputQueueFull,
    InputPaused,
    OutputQueue,
    InputOffsetsSkipped,
    MergePartsDropped,
    MergePartitions,
    HeapBytes,
}

/// What a family is built as. Every plain kind is a labelled vector; a family without labels
/// has its one series from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Integer counter (`IntCounterVec`).
    Counter,
    /// Float counter (`CounterVec`).
    FloatCounter,
    /// Integer gauge (`IntGaugeVec`).
    Gauge,
    /// Float gauge (`GaugeVec`).
    FloatGauge,
    /// Histogram (`HistogramVec`) with these bucket bounds.
    Histogram(Bounds),
    /// Current-state gauge kept from deltas ([`super::StateGauge`]).
    StateGauge,
    /// Last-closed-window summary ([`super::WindowSummary`]), label `window`.
    WindowSummary,
}

/// Histogram bucket bounds (see [`buckets`]); some depend on the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bounds {
    FirstResponse,
    Resolution,
    Handle,
    Recovery,
    Processing,
    State,
}

impl Bounds {
    /// The bounds, in seconds, for `cfg`.
    pub(crate) fn seconds(self, cfg: &Config) -> Vec<f64> {
        match self {
            Bounds::FirstResponse => buckets::first_response(cfg),
            Bounds::Resolution => buckets::resolution(cfg),
            Bounds::Handle => buckets::HANDLE_BASE.to_vec(),
            Bounds::Recovery => buckets::recovery(cfg),
            Bounds::Processing => buckets::PROCESSING.to_vec(),
            Bounds::State => buckets::STATE.to_vec(),
        }
    }
}

/// One metric family.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Def {
    /// Its row in [`DEFS`].
    pub id: Id,
    /// The metric name (SPEC §6; histograms and summaries add `_bucket`, `_sum`, `_count`).
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// What it is built as (and the bucket bounds of a histogram).
    pub kind: Kind,
    /// Label names, in the order label values are given.
    pub labels: Labels,
    /// Label values of the series that exist (at 0) from the start, so that dashboards see
    /// them before the first event. (`events_total` and `events_invalid_total` get theirs from
    /// the event enums, `label_overflow_total` from the label caps.)
    pub start: &'static [&'static [&'static str]],
}

/// A row without starting series.
const fn def(id: Id, kind: Kind, name: &'static str, labels: Labels, help: &'static str) -> Def {
    Def {
        id,
        name,
        help,
        kind,
        labels,
        start: &[],
    }
}

impl Def {
    /// This definition with series `start` created at 0.
    const fn starting(self, start: &'static [&'static [&'static str]]) -> Def {
        Def { start, ..self }
    }
}

/// Label names.
type Labels = &'static [&'static str];

const TICKET: Labels = &["team", "channel", "priority"];
const SLA: Labels = &["sla", "team", "priority"];
const WINDOW: Labels = &["window"];
/// The labels of a family with one series.
pub(crate) const NO_LABELS: Labels = &[];

// Short names for the table.
use Bounds as B;
use Kind::{Counter, FloatCounter, FloatGauge, Gauge, Histogram, StateGauge, WindowSummary};

/// Every family, in [`Id`] order (checked at compile time).
#[rustfmt::skip]
pub(crate) const DEFS: &[Def] = &[
    // --- Cumulative KPIs (SPEC §3, §5), fed by the engine observer.
    def(Id::TicketsCreated, Counter, "cxstream_tickets_created_total", TICKET,
        "Tickets created (ticket.created events)."),
    def(Id::TicketsSolved, Counter, "cxstream_tickets_solved_total", TICKET,
        "Ticket solves (every ticket.solved, including solves after a reopen)."),
    def(Id::TicketsFirstSolved, Counter, "cxstream_tickets_first_solved_total", TICKET,
        "Tickets solved for the first time."),
    def(Id::TicketsFcr, Counter, "cxstream_tickets_fcr_total", TICKET,
        "First solves resolved at first contact (at most one public agent message before \
         the first solve). FCR ratio = fcr / first_solved."),
    def(Id::TicketsReopened, Counter, "cxstream_tickets_reopened_total", TICKET,
        "Ticket reopens."),
    def(Id::TicketsEscalated, Counter, "cxstream_tickets_escalated_total", TICKET,
        "Ticket escalations or transfers, counted under the team the ticket had before."),
    def(Id::FirstResponseSeconds, Histogram(B::FirstResponse),
        "cxstream_first_response_seconds", TICKET,
        "Time from ticket creation to the first public agent message, in seconds. \
         Bucket bounds include every configured SLA target."),
    def(Id::ResolutionSeconds, Histogram(B::Resolution), "cxstream_resolution_seconds", TICKET,
        "Time from ticket creation to each solve, in seconds. Bucket bounds include every \
         configured SLA target."),
    def(Id::HandleSeconds, Histogram(B::Handle), "cxstream_handle_seconds", &["channel"],
        "Handling time of one interaction (contact.handled), in seconds; AHT = sum / count."),
    def(Id::SlaAchieved, Counter, "cxstream_sla_achieved_total", SLA,
        "SLA clocks stopped at or before their due (sla = first_response | resolution)."),
    def(Id::SlaBreached, Counter, "cxstream_sla_breached_total", SLA,
        "SLA breaches, counted when detected (the watermark passed the due with the clock \
         still running, or it stopped late)."),
    def(Id::CsatResponses, Counter, "cxstream_csat_responses_total", &["team", "score"],
        "CSAT survey answers by score (1-5, satisfied = 4 or 5); team of the ticket the \
         survey names, \"none\" when it names no known ticket."),
    def(Id::NpsResponses, Counter, "cxstream_nps_responses_total", &["class"],
        "NPS survey answers by class (promoter 9-10, passive 7-8, detractor 0-6). \
         NPS = 100 * (promoters - detractors) / responses.")
        .starting(&[&["promoter"], &["passive"], &["detractor"]]),
    def(Id::CesResponses, Counter, "cxstream_ces_responses_total", &["score"],
        "CES survey answers by score (1-7, 7 = very easy)."),
    def(Id::Orders, Counter, "cxstream_orders_total", NO_LABELS,
        "Orders placed."),
    def(Id::OrderRevenue, FloatCounter, "cxstream_order_revenue_total", NO_LABELS,
        "Sum of order.placed amounts (in the shop's currency)."),
    def(Id::Returns, Counter, "cxstream_returns_total", NO_LABELS,
        "Orders returned or exchanged."),
    def(Id::WarrantyClaims, Counter, "cxstream_warranty_claims_total", NO_LABELS,
        "Warranty claims and repair requests."),
    def(Id::CustomersChurned, Counter, "cxstream_customers_churned_total", &["signalled"],
        "Customers who left (customer.churned); signalled = whether the customer had a \
         churn.risk signal in the preceding effectiveness horizon (default 90 days).")
        .starting(&[&["false"], &["true"]]),
    def(Id::ChurnSignals, Counter, "cxstream_churn_signals_total", NO_LABELS,
        "churn.risk records emitted (a customer's churn-risk score crossed the threshold)."),
    def(Id::ChurnSignalOutcomes, Counter, "cxstream_churn_signal_outcomes_total", &["outcome"],
        "Outcomes of churn.risk signals: confirmed (the customer churned within the horizon) \
         or expired_without_churn. Precision = confirmed / all outcomes.")
        .starting(&[&["confirmed"], &["expired_without_churn"]]),
    def(Id::RecoveryCases, Counter, "cxstream_recovery_cases_total", &["outcome"],
        "Service-recovery cases opened by a dissatisfied survey answer, answered by a \
         contact in time, or overdue.")
        .starting(&[&["opened"], &["answered"], &["overdue"]]),
    def(Id::RecoveryAnswerSeconds, Histogram(B::Recovery),
        "cxstream_recovery_answer_seconds", NO_LABELS,
        "Time from a recovery case's trigger to the contact that answered it, in seconds."),
    def(Id::PostServiceOutcomes, Counter, "cxstream_post_service_outcomes_total",
        &["outcome", "csat_band"],
        "Repurchase after service: each first solve's outcome, converted (the customer \
         ordered within the horizon) or expired, by the CSAT band of the ticket.")
        .starting(&[
            &["converted", "satisfied"], &["expired", "satisfied"],
            &["converted", "neutral"], &["expired", "neutral"],
            &["converted", "dissatisfied"], &["expired", "dissatisfied"],
            &["converted", "unrated"], &["expired", "unrated"],
        ]),
    // --- Current state.
    def(Id::OpenTickets, StateGauge, "cxstream_open_tickets", &["team", "priority"],
        "Tickets currently open (created or reopened, not solved)."),
    def(Id::SlaBreachedOpenTickets, StateGauge, "cxstream_sla_breached_open_tickets", SLA,
        "Open tickets already past an SLA due: first_response = still waiting for the \
         first answer after its due; resolution = open after the resolution due."),
    def(Id::CustomersAtRisk, Gauge, "cxstream_customers_at_risk", NO_LABELS,
        "Customers with a churn.risk signal whose outcome is still pending."),
    def(Id::RecoveryOpenCases, Gauge, "cxstream_recovery_open_cases", NO_LABELS,
        "Service-recovery cases open (waiting for a contact)."),
    // --- Last closed window, from the `{}` group's kpi.window records.
    def(Id::WindowFirstResponseSeconds, WindowSummary,
        "cxstream_window_first_response_seconds", WINDOW,
        "First response time in the last closed window of each size (all tickets): \
         nearest-rank quantiles; _count and _sum are that window's, not cumulative."),
    def(Id::WindowResolutionSeconds, WindowSummary,
        "cxstream_window_resolution_seconds", WINDOW,
        "Resolution time in the last closed window of each size (all tickets): \
         nearest-rank quantiles; _count and _sum are that window's, not cumulative."),
    def(Id::WindowFcrRatio, FloatGauge, "cxstream_window_fcr_ratio", WINDOW,
        "First contact resolution ratio (fcr / first solved) of the last closed window \
         of each size; absent when it had no first solve."),
    def(Id::WindowCsatRatio, FloatGauge, "cxstream_window_csat_ratio", WINDOW,
        "CSAT ratio (satisfied / responses) of the last closed window of each size; \
         absent when it had no CSAT answer."),
    def(Id::WindowNps, FloatGauge, "cxstream_window_nps", WINDOW,
        "Net promoter score (-100..100) of the last closed window of each size; absent \
         when it had no NPS answer."),
    // --- The pipeline.
    def(Id::Events, Counter, "cxstream_events_total", &["type"],
        "Valid events applied, by type."),
    def(Id::EventsInvalid, Counter, "cxstream_events_invalid_total", &["reason"],
        "Invalid inputs (dead-lettered) by reason; ticket_exists = ticket.created for a \
         ticket that already exists."),
    def(Id::EventsDuplicate, Counter, "cxstream_events_duplicate_total", NO_LABELS,
        "Events ignored because their id was already seen within the dedup horizon."),
    def(Id::EventsLate, Counter, "cxstream_events_late_total", NO_LABELS,
        "Events older than the watermark on arrival (still applied to state and to the \
         cumulative metrics; their closed windows do not change)."),
    def(Id::EventsOrphan, Counter, "cxstream_events_orphan_total", NO_LABELS,
        "Ticket events naming an unknown (never created or evicted) ticket, dead-lettered."),
    def(Id::WindowLateContributions, Counter, "cxstream_window_late_contributions_total", NO_LABELS,
        "Measurements dropped from kpi.window records because their window had closed."),
    def(Id::StateEvictions, Counter, "cxstream_state_evictions_total", &["state"],
        "Ticket and customer state evicted after its retention.")
        .starting(&[&["ticket"], &["customer"]]),
    def(Id::OutputRecords, Counter, "cxstream_output_records_total", &["type"],
        "Output records written, by type.")
        .starting(&[
            &["kpi.window"], &["sla.breached"], &["churn.risk"], &["recovery.needed"],
            &["recovery.overdue"], &["deadletter"],
        ]),
    def(Id::ConsumerLag, Gauge, "cxstream_consumer_lag", &["topic", "partition"],
        "Messages between the consumer's position and the partition's high \
         watermark."),
    def(Id::Watermark, FloatGauge, "cxstream_watermark_seconds", NO_LABELS,
        "Event-time watermark, in seconds since the UNIX epoch."),
    def(Id::ProcessingSeconds, Histogram(B::Processing), "cxstream_processing_seconds", NO_LABELS,
        "Time spent processing one batch of input, in seconds."),
    def(Id::StateTickets, Gauge, "cxstream_state_tickets", NO_LABELS,
        "Tickets held in state."),
    def(Id::StateCustomers, Gauge, "cxstream_state_customers", NO_LABELS,
        "Customers held in state."),
    def(Id::StateAftersalesCustomers, Gauge, "cxstream_state_aftersales_customers", NO_LABELS,
        "Customers among cxstream_state_customers holding after-sales state (churn-risk score, \
         recovery case, cohorts; counted every 5 s)."),
    def(Id::StateScheduledItems, Gauge, "cxstream_state_scheduled_items", NO_LABELS,
        "Timers and after-sales inputs waiting for the watermark."),
    def(Id::StateEventIds, Gauge, "cxstream_state_event_ids", NO_LABELS,
        "Event ids remembered for de-duplication (kept dedup_horizon, swept with retention)."),
    def(Id::StateWindowAggregates, Gauge, "cxstream_state_window_aggregates", NO_LABELS,
        "Open window x group aggregates."),
    def(Id::LabelOverflow, Counter, "cxstream_label_overflow_total", &["label"],
        "Label values folded into \"__other__\" because the label already had \
         metrics.label_limit distinct values; one per folded metric update."),
    // --- Durability and scale-out (SPEC §7).
    def(Id::CheckpointSeconds, Histogram(B::State), "cxstream_checkpoint_seconds", NO_LABELS,
        "Time from taking a partition's checkpoint to its manifest being acknowledged, in \
         seconds."),
    def(Id::CheckpointBytes, Counter, "cxstream_checkpoint_bytes_total", NO_LABELS,
        "Bytes written to the state topic by complete checkpoints."),
    def(Id::RestoreSeconds, Histogram(B::State), "cxstream_restore_seconds", NO_LABELS,
        "Time to restore an assigned partition's state from the state topic, in seconds."),
    def(Id::RestoredPartitions, Counter, "cxstream_restored_partitions_total", NO_LABELS,
        "Partitions restored on assignment (from a checkpoint, or empty)."),
    def(Id::MergePendingWindows, Gauge, "cxstream_merge_pending_windows", NO_LABELS,
        "Windows whose parts are sealed on some partitions and wait for others (in `run`: \
         at this instance's merge step)."),
    def(Id::PartitionWatermark, FloatGauge, "cxstream_partition_watermark_seconds",
        &["partition"],
        "Each assigned input partition's watermark, in seconds since the UNIX epoch."),
    def(Id::CheckpointAge, FloatGauge, "cxstream_checkpoint_age_seconds", &["partition"],
        "Seconds since each assigned partition's latest complete checkpoint."),
    // --- Hardening.
    def(Id::OutputErrors, Counter, "cxstream_output_errors_total", &["type", "reason"],
        "Records the broker can never take (too_large, invalid, rejected), by record type \
         (an output record type, state or input); each is logged with its key and dropped."),
    def(Id::OutputQueueFull, Counter, "cxstream_output_queue_full_total", &["type"],
        "Records that found the producer's local queue full and waited in cxstream's own \
         queue, by record type; the input is paused while any waits. Checkpoints (state) \
         are sent in slices that never overfill the queue: state counts only the single \
         record of an idle advance."),
    def(Id::InputPaused, Gauge, "cxstream_input_paused", NO_LABELS,
        "1 while input is paused because the producer's queue is full (backpressure: the \
         broker is down or slower than the input)."),
    def(Id::OutputQueue, Gauge, "cxstream_output_queue", &["unit"],
        "What the producer's local queue holds (records handed over and not acknowledged yet): \
         unit=\"records\" (at most queue.buffering.max.messages) or unit=\"bytes\" (their \
         keys and values, at most queue.buffering.max.kbytes)."),
    def(Id::InputOffsetsSkipped, Counter, "cxstream_input_offsets_skipped_total",
        &["topic", "partition"],
        "Input offsets never delivered between two that were: deleted by the topic's retention \
         before cxstream read them (the consumer then starts again at the earliest offset \
         still kept, auto.offset.reset), compacted away, or transaction markers (one per \
         transaction of a transactional producer). Events deleted unread are in no KPI."),
    // --- Scale-out: the merge step of the parts topic.
    def(Id::MergePartsDropped, Counter, "cxstream_merge_parts_dropped_total", NO_LABELS,
        "Window parts dropped by the merge step because their window was already emitted \
         (a partition re-sent them after a restore, or they came late)."),
    def(Id::MergePartitions, Gauge, "cxstream_merge_partitions_owned", NO_LABELS,
        "Parts-topic partitions whose merge step this instance runs."),
    // --- Memory.
    def(Id::HeapBytes, Gauge, "cxstream_heap_bytes", &["kind"],
        "The process's heap (jemalloc: cxstream's and librdkafka's allocations), every 10 s: \
         kind=\"allocated\" (in use: state, buffers, records, librdkafka's queues) or \
         kind=\"resident\" (the physical memory the allocator holds for it; the rest of the \
         process RSS is the binary and thread stacks)."),
];

/// `DEFS[id as usize].id == id` for every row, so [`Id`] indexes the table.
const _: () = {
    let mut i = 0;
    while i < DEFS.len() {
        assert!(DEFS[i].id as usize == i, "DEFS rows must be in Id order");
        i += 1;
    }
    assert!(
        DEFS.len() == Id::HeapBytes as usize + 1,
        "one DEFS row per Id"
    );
};
