#include "publisher_stream.h"

#include <algorithm>
#include <cerrno>
#include <new>
#include <stdexcept>
#include <utility>

#include <kvevents/decode.h>

#include "delivery_lag.h"
#include "endpoint_syntax.h"
#include "wire_frames.h"
#include "zmq_receive.h"

namespace kvevents::detail {

namespace {

constexpr int kMaxRepliesPerDrain = 512;  // keeps the live and replay sockets both moving
// Replies queued on our side of a replay at most. A full queue stops libzmq reading the
// connection, so nothing is dropped here: TCP pushes back to the publisher's ROUTER, which drops
// past its own send limit (vLLM's is 1000) and the machine asks again from where replies stopped.
// Unbounded, a 10,000-batch replay the handler cannot keep up with was held whole, several
// hundred MB across a fleet's concurrent replays.
constexpr int kReplayReceiveHwm = 1000;

StreamConfig stream_config(const ClientOptions& options, bool replay_available) {
    StreamConfig config;
    config.replay_available = replay_available;
    config.start_sequence = options.start_sequence;
    config.max_buffered = options.max_buffered_batches;
    config.replay_idle_timeout = options.replay_idle_timeout;
    config.replay_total_timeout = options.replay_total_timeout;
    config.backoff_initial = options.replay_backoff_initial;
    config.backoff_max = options.replay_backoff_max;
    config.tail_probe_idle = options.tail_probe_idle;
    return config;
}

}  // namespace

ClientOptions settings_only(ClientOptions options) {
    options.context.reset();
    options.logger.reset();
    return options;
}

PublisherStream::PublisherStream(ClientOptions options,
                                 std::string replay_endpoint,
                                 EventHandler& handler,
                                 std::shared_ptr<spdlog::logger> log,
                                 zmq::context_t& context,
                                 StreamHost& host)
    : options_(settings_only(std::move(options))),
      replay_endpoint_(std::move(replay_endpoint)),
      handler_(handler),
      log_(std::move(log)),
      context_(context),
      host_(host),
      machine_(*this, stream_config(options_, !replay_endpoint_.empty())),
      error_log_(options_.log_errors_per_second) {
    if (options_.start_sequence && !replay_endpoint_.empty()) {
        readiness_ = Readiness::kAwaitingHistory;
    } else {
        readiness_ = Readiness::kAwaitingConnection;
        history_outcome_ = replay_endpoint_.empty() ? "live only: replay is off"
                                                    : "live only: no start-up replay was asked for";
    }
}

PublisherStream::~PublisherStream() {
    close();
}

void PublisherStream::check_replay_endpoint() const {
    if (replay_endpoint_.empty())
        return;
    zmq::socket_t probe(context_, zmq::socket_type::dealer);
    probe.set(zmq::sockopt::linger, 0);
    probe.set(zmq::sockopt::ipv6, has_ipv6_literal(replay_endpoint_));
    probe.connect(replay_endpoint_);
}

template <class... Args>
void PublisherStream::log_error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    const auto held = error_log_.allow(StreamClock::now());
    if (!held)
        return;
    if (*held > 0)
        log_->error("[{}] {} similar errors not logged", options_.pod_key, *held);
    log_->error(fmt, std::forward<Args>(args)...);
}

void PublisherStream::start(TimePoint now) {
    machine_.start(now);
    check_ready();
}

void PublisherStream::check_ready() {
    if (readiness_ == Readiness::kAwaitingHistory && machine_.history_settled()) {
        readiness_ = Readiness::kAwaitingConnection;
        if (machine_.backing_off()) {
            history_outcome_ =
                std::string("the start-up replay failed (") +
                (replay_silent_ ? "no answer from " + replay_endpoint_ : "see the log") +
                "): blocks stored before the live stream are unknown until a later replay "
                "fetches them";
        } else {
            history_outcome_ = "history replayed from sequence " +
                               std::to_string(options_.start_sequence.value_or(0));
        }
    }
    if (readiness_ != Readiness::kAwaitingConnection || state_ != ConnectionState::kConnected ||
        stopped_)
        return;
    readiness_ = Readiness::kReady;
    update_stats([](ClientStats& s) { s.ready = true; });
    log_->info("[{}] ready: {}", options_.pod_key, history_outcome_);
    StreamNotice n = make_notice(StreamNotice::Kind::kReady);
    n.detail = history_outcome_;
    notify(std::move(n));
}

void PublisherStream::close() {
    stopped_ = true;
    close_replay_socket();
    if (waiting_)
        host_.give_back_replay_turn(*this, std::exchange(waiting_, std::nullopt)->id);
    if (turn_held_)
        host_.give_back_replay_turn(*this, *std::exchange(turn_held_, std::nullopt));
}

void PublisherStream::close_replay_socket() {
    if (!dealer_)
        return;
    host_.replay_socket_closing(*this);
    dealer_.reset();
}

// --- notices --------------------------------------------------------------------------------

StreamNotice PublisherStream::make_notice(StreamNotice::Kind kind) const {
    return StreamNotice{kind, options_.pod_key,           std::nullopt, std::nullopt, state_,
                        {},   options_.data_parallel_rank};
}

void PublisherStream::notify(StreamNotice notice) {
    if (stopped_)
        return;  // no handler call starts once delivery was stopped
    handler_notice(std::move(notice));
}

// A throwing notice handler is counted like a throwing batch handler; it gets no kHandlerError
// notice of its own, which could throw again.
// Every caller moves its notice in. NOLINTNEXTLINE(performance-unnecessary-value-param)
void PublisherStream::handler_notice(StreamNotice notice) {
    try {
        handler_.on_notice(notice);
    } catch (const std::exception& e) {
        notice_handler_failed(notice.kind, e.what());
    } catch (...) {
        notice_handler_failed(notice.kind, "non-exception thrown");
    }
}

void PublisherStream::notice_handler_failed(StreamNotice::Kind kind, const std::string& what) {
    update_stats([](ClientStats& s) { ++s.handler_errors; });
    log_error("[{}] handler threw on a {} notice: {}", options_.pod_key, to_string(kind), what);
}

void PublisherStream::report_decode_error(std::optional<std::uint64_t> seq, std::string detail) {
    update_stats([](ClientStats& s) { ++s.decode_errors; });
    log_error("[{}] decode error{}: {}", options_.pod_key,
              seq ? " in batch " + std::to_string(*seq) : std::string(), detail);
    StreamNotice n = make_notice(StreamNotice::Kind::kDecodeError);
    n.first_sequence = seq;
    n.detail = std::move(detail);
    notify(std::move(n));
}

void PublisherStream::on_receive_error(std::optional<std::uint64_t> sequence, std::string detail) {
    report_decode_error(sequence, std::move(detail));
}

void PublisherStream::on_not_connected(std::string detail) {
    log_->warn("[{}] {}", options_.pod_key, detail);
    StreamNotice n = make_notice(StreamNotice::Kind::kNotConnected);
    n.detail = std::move(detail);
    notify(std::move(n));
}

void PublisherStream::fail(const std::string& why, bool tell_handler) {
    log_->error("[{}] stopped by {}", options_.pod_key, why);
    update_stats([](ClientStats& s) { s.state = ConnectionState::kFailed; });
    stopped_ = true;
    if (!tell_handler)
        return;
    StreamNotice n = make_notice(StreamNotice::Kind::kConnectionChanged);
    n.state = ConnectionState::kFailed;
    n.detail = "stopped by " + why;
    handler_notice(std::move(n));
}

void PublisherStream::mark_stopped() {
    update_loop_stats([](ClientStats& s) {
        if (s.state != ConnectionState::kFailed)
            s.state = ConnectionState::kStopped;
    });
}

ClientStats PublisherStream::stats() const {
    std::lock_guard<std::mutex> lock(stats_mu_);
    return stats_;
}

void PublisherStream::flush_loop_stats() {
    if (unflushed_bytes_ != 0 || unflushed_wakeups_ != 0)
        update_loop_stats([](ClientStats&) {});
}

// --- the live side ----------------------------------------------------------------------------

void PublisherStream::on_live(RawBatch batch, TimePoint now) {
    if (batch.topic_view() != last_live_topic_)
        last_live_topic_ = batch.topic_view();
    machine_.on_live(std::move(batch), now);
    check_ready();
}

void PublisherStream::on_backlog(TimePoint now) {
    machine_.on_backlog(now);
}

void PublisherStream::on_connection(ConnectionState next, const std::string& peer) {
    if (next == state_)
        return;
    const bool reconnect = next == ConnectionState::kConnected && ever_connected_;
    state_ = next;
    ever_connected_ = ever_connected_ || next == ConnectionState::kConnected;
    update_stats([&](ClientStats& s) {
        s.state = next;
        if (reconnect)
            ++s.reconnects;
    });
    if (next == ConnectionState::kDisconnected && !disconnects_warned_elsewhere_) {
        if (const auto held = disconnect_log_.allow(StreamClock::now())) {
            log_->warn("[{}] disconnected from {}; reconnecting{}", options_.pod_key, peer,
                       *held == 0
                           ? std::string()
                           : " (" + std::to_string(*held) + " earlier disconnects not logged)");
        }
    } else {
        log_->info("[{}] {} {}", options_.pod_key, to_string(next), peer);
    }
    StreamNotice n = make_notice(StreamNotice::Kind::kConnectionChanged);
    n.detail = peer;
    notify(std::move(n));
    if (reconnect)
        machine_.on_reconnected(StreamClock::now());
    check_ready();
}

void PublisherStream::on_tick(TimePoint now) {
    if (stopped_)
        return;
    machine_.on_tick(now);
    check_ready();
}

// --- delivery ---------------------------------------------------------------------------------

void PublisherStream::deliver(RawBatch& raw) {
    if (stopped_)
        return;  // no handler call starts once delivery was stopped
    try {
        deliver_decoded(raw);
    } catch (const std::exception& e) {
        // Whatever one batch does, the stream goes on with the next.
        try {
            report_decode_error(raw.sequence,
                                std::string("handling the batch failed: ") + e.what());
        } catch (const std::exception&) {
            // Out of memory even for the notice: the batch is still counted.
            update_stats([](ClientStats& s) { ++s.decode_errors; });
        }
    }
}

void PublisherStream::deliver_decoded(RawBatch& raw) {
    DecodeResult decoded = decode_batch(raw.payload.data(), raw.payload.size());
    if (decoded.fatal) {
        report_decode_error(raw.sequence, decoded.fatal->message());
        return;
    }
    if (decoded.malformed_events != 0) {
        update_stats([&](ClientStats& s) { s.decode_errors += decoded.malformed_events - 1; });
        report_decode_error(raw.sequence, std::to_string(decoded.malformed_events) +
                                              " malformed event(s) skipped; first: " +
                                              decoded.event_errors.front().message());
    }
    const auto lag = lag_since(decoded.batch.ts);
    update_loop_stats([&](ClientStats& s) {
        ++s.batches;
        s.events += decoded.batch.events.size();
        s.unknown_events += decoded.unknown_events;
        if (raw.replayed)
            ++s.batches_recovered;
        s.last_sequence = raw.sequence;
        s.last_lag = lag;
        s.max_lag = std::max(s.max_lag, s.last_lag);
    });
    // One ReceivedBatch is reused, so its strings keep their storage from batch to batch; they
    // are set every time because the last handler call may have moved them away.
    ReceivedBatch& batch = delivery_;
    batch.pod_key = options_.pod_key;
    batch.model_name = options_.model_name;
    batch.sequence = raw.sequence;
    batch.topic.assign(raw.topic_view());
    batch.batch = std::move(decoded.batch);
    batch.replayed = raw.replayed;
    batch.data_parallel_rank = options_.data_parallel_rank;
    try {
        handler_.on_batch(batch);
    } catch (const std::exception& e) {
        handler_failed(raw.sequence, e.what());
    } catch (...) {
        handler_failed(raw.sequence, "non-exception thrown");
    }
    // The events are not kept until the next batch: a thousand idle publishers would each hold
    // their last batch's (about 5 KiB).
    batch.batch = EventBatch{};
}

void PublisherStream::handler_failed(std::uint64_t seq, const std::string& what) {
    update_stats([](ClientStats& s) { ++s.handler_errors; });
    log_error("[{}] handler threw on batch {}: {}", options_.pod_key, seq, what);
    StreamNotice n = make_notice(StreamNotice::Kind::kHandlerError);
    n.first_sequence = seq;
    n.detail = what;
    notify(std::move(n));
}

void PublisherStream::announce_restart(std::uint64_t revealed_by) {
    update_stats([](ClientStats& s) { ++s.restarts; });
    log_->warn("[{}] publisher restarted (sequence {}); its earlier blocks are gone",
               options_.pod_key, revealed_by);
    StreamNotice n = make_notice(StreamNotice::Kind::kPublisherRestarted);
    n.first_sequence = revealed_by;
    notify(std::move(n));
}

void PublisherStream::announce_continuity_lost(std::uint64_t next_sequence) {
    update_stats([](ClientStats& s) { ++s.continuity_lost; });
    log_loss(
        "cannot prove the publisher is the one followed before (it may have restarted); "
        "its earlier blocks may be gone; going on from sequence " +
        std::to_string(next_sequence));
    StreamNotice n = make_notice(StreamNotice::Kind::kContinuityLost);
    n.first_sequence = next_sequence;
    notify(std::move(n));
}

void PublisherStream::announce_loss(std::uint64_t first, std::uint64_t last) {
    update_stats([&](ClientStats& s) { s.batches_unrecoverable += last - first + 1; });
    log_loss("batches " + std::to_string(first) + ".." + std::to_string(last) +
             " are lost for good");
    StreamNotice n = make_notice(StreamNotice::Kind::kUnrecoverableGap);
    n.first_sequence = first;
    n.last_sequence = last;
    notify(std::move(n));
}

void PublisherStream::duplicate_dropped(std::uint64_t) {
    update_stats([](ClientStats& s) { ++s.duplicates_dropped; });
}

void PublisherStream::buffer_overflow(std::uint64_t) {
    update_stats([](ClientStats& s) { ++s.live_dropped_while_buffering; });
}

void PublisherStream::gap_detected(std::uint64_t first_missing, std::uint64_t seen) {
    update_stats([](ClientStats& s) { ++s.gaps_detected; });
    // Replay normally heals it; what it cannot heal is announced, and warned about, as a loss.
    log_->info("[{}] sequence gap: expected {}, got {}", options_.pod_key, first_missing, seen);
}

// While the replay endpoint is silent, its warning (once per backoff) has named the cause, and
// the gaps it cannot heal would otherwise fill the log: they go to the info level. The notices
// and statistics are the same either way.
void PublisherStream::log_loss(const std::string& what) {
    log_->log(replay_silent_ ? spdlog::level::info : spdlog::level::warn, "[{}] {}",
              options_.pod_key, what);
}

// --- replay -----------------------------------------------------------------------------------

ReplaySend PublisherStream::request_replay(std::uint64_t id,
                                           std::uint64_t from,
                                           ReplayPurpose why) {
    update_stats([](ClientStats& s) { ++s.replays_requested; });
    replay_id_ = id;
    replay_purpose_ = why;
    if (!host_.take_replay_turn(*this, id)) {
        waiting_ = WaitingRequest{id, from, why};
        log_->debug("[{}] {} replay from sequence {} waits for its turn", options_.pod_key,
                    to_string(why), from);
        return ReplaySend::kWaiting;
    }
    turn_held_ = id;
    if (send_replay_request(from, why))
        return ReplaySend::kSent;
    host_.give_back_replay_turn(*this, *std::exchange(turn_held_, std::nullopt));
    return ReplaySend::kUnsendable;
}

void PublisherStream::replay_turn_granted(std::uint64_t id, TimePoint now) {
    if (!waiting_ || waiting_->id != id || stopped_) {
        host_.give_back_replay_turn(*this, id);  // it ended while the grant was on its way
        return;
    }
    const WaitingRequest request = *std::exchange(waiting_, std::nullopt);
    turn_held_ = id;
    // One that cannot be sent now gets no answer, and times out like one lost on the way.
    send_replay_request(request.from, request.purpose);
    machine_.on_replay_sent(id, now);
    check_ready();
}

// A fresh socket per request: replies to an ended request can never be mistaken for replies to
// this one.
bool PublisherStream::send_replay_request(std::uint64_t from, ReplayPurpose why) {
    try {
        auto socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
        socket->set(zmq::sockopt::linger, 0);
        socket->set(zmq::sockopt::ipv6, has_ipv6_literal(replay_endpoint_));
        socket->set(zmq::sockopt::rcvhwm, kReplayReceiveHwm);
        socket->set(zmq::sockopt::maxmsgsize, options_.max_message_size);
        socket->connect(replay_endpoint_);
        socket->send(zmq::message_t(), zmq::send_flags::sndmore);
        socket->send(zmq::buffer(be_u64(from)), zmq::send_flags::none);
        close_replay_socket();
        dealer_ = std::move(socket);
        replay_replied_ = false;
        host_.replay_socket_opened(*this);
    } catch (const zmq::error_t& e) {
        if (e.num() == ETERM)
            throw;  // the caller shut the shared context down: the stream cannot go on
        log_error("[{}] cannot send a {} replay request: {}", options_.pod_key, to_string(why),
                  e.what());
        return false;
    }
    log_->info("[{}] {} replay requested from sequence {}", options_.pod_key, to_string(why), from);
    return true;
}

void PublisherStream::replay_ended(std::uint64_t id, ReplayOutcome outcome) {
    const bool was_sent = id == replay_id_ && dealer_ != nullptr;
    if (id == replay_id_)
        close_replay_socket();
    if (waiting_ && waiting_->id == id) {
        waiting_.reset();
        host_.give_back_replay_turn(*this, id);
    }
    if (turn_held_ == id) {
        turn_held_.reset();
        host_.give_back_replay_turn(*this, id);
    }
    switch (outcome) {
        case ReplayOutcome::kCompleted:
            update_stats([](ClientStats& s) { ++s.replays_completed; });
            break;
        case ReplayOutcome::kCancelled:
            break;
        case ReplayOutcome::kTimedOut:
        case ReplayOutcome::kUnsendable:
        case ReplayOutcome::kAbandoned:
            update_stats([](ClientStats& s) { ++s.replays_failed; });
            if (outcome == ReplayOutcome::kTimedOut && was_sent && !replay_replied_) {
                replay_went_unanswered(replay_purpose_);
                break;
            }
            log_->warn("[{}] replay {}", options_.pod_key,
                       outcome == ReplayOutcome::kTimedOut     ? "timed out"
                       : outcome == ReplayOutcome::kUnsendable ? "could not be sent"
                                                               : "abandoned: held batches reached "
                                                                 "replay_total_timeout");
            break;
    }
}

// One warning per failed request, so once per backoff cycle: each failure starts one.
void PublisherStream::replay_went_unanswered(ReplayPurpose why) {
    replay_silent_ = true;
    log_->warn(
        "[{}] replay endpoint {} did not answer a {} replay request within {} ms. vLLM answers "
        "replay requests only when its kv_events_config sets replay_endpoint (for example "
        "\"replay_endpoint\": \"tcp://*:5558\"); otherwise check the address, the port (offset by "
        "the data-parallel rank) and firewalls, or turn replay off. Until it answers, gaps are "
        "reported lost at once and the replay is asked again after a backoff",
        options_.pod_key, replay_endpoint_, to_string(why), options_.replay_idle_timeout.count());
}

void PublisherStream::drain_replay() {
    drain_replay_messages();
    check_ready();
}

void PublisherStream::drain_replay_messages() {
    const std::uint64_t id = replay_id_;
    for (int i = 0; i < kMaxRepliesPerDrain && dealer_ && receive_message(*dealer_, parts_); ++i) {
        // Taken per reply: time the handler spends on a batch is not replay silence.
        const auto now = StreamClock::now();
        replay_replied_ = true;
        replay_silent_ = false;
        const ParsedFrames f = parse_replay_frames(frame_views(parts_, frame_views_));
        switch (f.kind) {
            case ParsedFrames::Kind::kMalformed:
                report_decode_error(std::nullopt, "replay: " + f.error);
                break;
            case ParsedFrames::Kind::kEnd:
                machine_.on_replay_end(id, now);
                return;
            case ParsedFrames::Kind::kData: {
                unflushed_bytes_ += f.payload.size();
                // Replies before vLLM v0.26 carry no topic; the publisher has only one.
                const bool has_topic = parts_.size() == 4;
                std::optional<RawBatch> batch = take_batch(
                    parts_, f.sequence, has_topic ? std::optional<std::size_t>(1) : std::nullopt,
                    last_live_topic_, true);
                if (batch) {
                    machine_.on_replay_batch(id, std::move(*batch), now);
                } else {
                    report_decode_error(f.sequence, "batch dropped: out of memory receiving it");
                }
                break;
            }
        }
        // The stream may have ended this request (and started another on a new socket).
        if (id != replay_id_ || stopped_)
            return;
    }
}

}  // namespace kvevents::detail
