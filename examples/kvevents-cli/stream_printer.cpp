#include "stream_printer.h"

#include <chrono>
#include <ostream>
#include <sstream>
#include <variant>

#include "event_json.h"

namespace kvevents::cli {

StreamPrinter::StreamPrinter(PrinterOptions options, std::ostream& out, std::ostream& err)
    : options_(options), out_(out), err_(err) {}

void StreamPrinter::write_text_hashes(const std::vector<BlockHash>& hashes) {
    out_ << " hashes=" << hashes.size();
    if (hashes.empty())
        return;
    if (!options_.verbose) {
        out_ << " first=" << hashes.front().to_string();
        return;
    }
    out_ << " block_hashes=";
    for (std::size_t i = 0; i < hashes.size(); ++i)
        out_ << (i == 0 ? "" : ",") << hashes[i].to_string();
}

void StreamPrinter::write_text_event(const ReceivedBatch& batch, std::size_t index) {
    const Event& event = batch.batch.events[index];
    out_ << publisher_label(batch.pod_key, batch.data_parallel_rank) << " seq=" << batch.sequence
         << ' ' << event_type_name(event);
    std::visit(Overloaded{
                   [&](const BlockStored& ev) {
                       write_text_hashes(ev.block_hashes);
                       const std::size_t tokens = ev.token_id_form == TokenIdForm::kString
                                                      ? ev.extras.or_empty().token_id_strings.size()
                                                      : ev.token_ids.size();
                       out_ << " tokens=" << tokens;
                       if (ev.parent_block_hash) {
                           out_ << " parent=" << ev.parent_block_hash->to_string();
                       }
                       out_ << " medium=" << (ev.medium == Medium::kUnset ? "-" : ev.medium_name());
                   },
                   [&](const BlockRemoved& ev) {
                       write_text_hashes(ev.block_hashes);
                       out_ << " medium=" << (ev.medium == Medium::kUnset ? "-" : ev.medium_name());
                   },
                   [&](const AllBlocksCleared&) {},
               },
               event);
    if (batch.replayed)
        out_ << " (replayed)";
    out_ << '\n';
}

void StreamPrinter::print_batch(const ReceivedBatch& batch) {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < batch.batch.events.size(); ++i) {
        if (options_.max_events && events_printed_ >= *options_.max_events) {
            reached_max_ = true;
            break;
        }
        if (options_.format == OutputFormat::kJson) {
            json_.clear();
            write_event_json(json_,
                             BatchOrigin{publisher_label(batch.pod_key, batch.data_parallel_rank),
                                         batch.sequence},
                             batch.batch, i, options_.hash_style);
            out_ << json_.str() << '\n';
        } else if (options_.format == OutputFormat::kText) {
            write_text_event(batch, i);
        }
        ++events_printed_;  // counted for --count even when none are printed
    }
    if (options_.max_events && events_printed_ >= *options_.max_events)
        reached_max_ = true;
    out_.flush();
}

void StreamPrinter::print_notice(const StreamNotice& notice) {
    std::lock_guard<std::mutex> lock(mu_);
    if (options_.format == OutputFormat::kJson && options_.json_notices) {
        json_.clear();
        json_.begin_object();
        json_.key("notice");
        json_.string(to_string(notice.kind));
        json_.key("pod");
        json_.string(publisher_label(notice.pod_key, notice.data_parallel_rank));
        json_.key("first_seq");
        notice.first_sequence ? json_.number(*notice.first_sequence) : json_.null();
        json_.key("last_seq");
        notice.last_sequence ? json_.number(*notice.last_sequence) : json_.null();
        json_.key("state");
        json_.string(to_string(notice.state));
        json_.key("detail");
        json_.string(notice.detail);
        json_.end_object();
        out_ << json_.str() << '\n';
        out_.flush();
        return;
    }
    // Built first and written at once: the fleet's loops log to stderr too, and a line written in
    // pieces could be cut by theirs.
    std::ostringstream line;
    line << "notice " << publisher_label(notice.pod_key, notice.data_parallel_rank) << ": ";
    switch (notice.kind) {
        case StreamNotice::Kind::kPublisherRestarted:
            line << "publisher restarted; forget this pod's blocks";
            break;
        case StreamNotice::Kind::kUnrecoverableGap:
            line << "batches " << notice.first_sequence.value_or(0) << ".."
                 << notice.last_sequence.value_or(0) << " lost for good";
            break;
        case StreamNotice::Kind::kContinuityLost:
            line << "cannot prove the publisher did not restart; forget this pod's blocks; "
                    "going on from batch "
                 << notice.first_sequence.value_or(0);
            break;
        case StreamNotice::Kind::kDecodeError:
            line << "decode error";
            if (notice.first_sequence)
                line << " in batch " << *notice.first_sequence;
            line << ": " << notice.detail;
            break;
        case StreamNotice::Kind::kConnectionChanged:
            line << to_string(notice.state) << ' ' << notice.detail;
            break;
        case StreamNotice::Kind::kHandlerError:
            line << "handler error: " << notice.detail;
            break;
        case StreamNotice::Kind::kNotConnected:
            line << "not connected: " << notice.detail;
            break;
        case StreamNotice::Kind::kHashesMatch:
            line << "block hashes match: " << notice.detail;
            break;
        case StreamNotice::Kind::kHashMismatch:
            line << "block hashes DO NOT match: " << notice.detail;
            break;
        case StreamNotice::Kind::kReady:
            line << "ready: " << notice.detail;
            break;
    }
    line << '\n';
    err_ << line.str() << std::flush;
}

std::string publisher_label(const std::string& pod_key, int data_parallel_rank) {
    if (data_parallel_rank == 0)
        return pod_key;
    return pod_key + "#dp" + std::to_string(data_parallel_rank);
}

std::string format_stats(const ClientStats& s) {
    std::ostringstream out;
    out << "batches=" << s.batches << " events=" << s.events << " bytes=" << s.bytes
        << " gaps=" << s.gaps_detected << " recovered=" << s.batches_recovered
        << " lost=" << s.batches_unrecoverable << " duplicates=" << s.duplicates_dropped
        << " restarts=" << s.restarts << " continuity_lost=" << s.continuity_lost
        << " reconnects=" << s.reconnects << " decode_errors=" << s.decode_errors
        << " unknown_events=" << s.unknown_events << " handler_errors=" << s.handler_errors
        << " replays=" << s.replays_requested << '/' << s.replays_completed << '/'
        << s.replays_failed << " last_seq=";
    if (s.last_sequence) {
        out << *s.last_sequence;
    } else {
        out << '-';
    }
    using Millis = std::chrono::duration<double, std::milli>;
    out << " lag_ms=" << Millis(s.last_lag).count() << '/' << Millis(s.max_lag).count()
        << " state=" << to_string(s.state) << " ready=" << (s.ready ? "yes" : "no");
    return out.str();
}

void StreamPrinter::print_stats(const std::string& pod_key, const ClientStats& stats) {
    std::lock_guard<std::mutex> lock(mu_);
    err_ << ("stats " + pod_key + ": " + format_stats(stats) + '\n') << std::flush;
}

void StreamPrinter::print_hashing(const std::string& pod_key,
                                  const HashingCheck::PublisherResult& result) {
    std::lock_guard<std::mutex> lock(mu_);
    err_ << ("hashing " + pod_key + ": " + format_hashing(result) + '\n') << std::flush;
}

std::string format_hashing(const HashingCheck::PublisherResult& r) {
    std::ostringstream out;
    out << (r.mismatched > 0 ? "MISMATCH"
            : r.matched > 0  ? "match"
                             : "unchecked")
        << " matched=" << r.matched << " mismatched=" << r.mismatched
        << " unverifiable=" << r.unverifiable;
    if (r.mismatched > 0)
        out << " last_mismatch=\"" << r.last_mismatch << '"';
    else if (r.unverifiable > 0)
        out << " last_unverifiable=\"" << r.last_unverifiable << '"';
    return out.str();
}

}  // namespace kvevents::cli
