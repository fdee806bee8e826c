#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <optional>
#include <string>

#include <kvevents/event_handler.h>
#include <kvevents/hashing_check.h>
#include <kvevents/zmq_client.h>

#include "event_json.h"
#include "json_writer.h"

namespace kvevents::cli {

enum class OutputFormat { kText, kJson, kNone };

struct PrinterOptions {
    OutputFormat format = OutputFormat::kText;
    /// With kJson: stream notices go to stdout as JSON lines with a "notice" key, not stderr.
    bool json_notices = false;
    /// Stop printing after this many events (the caller then stops the clients).
    std::optional<std::uint64_t> max_events;
    /// With kText: every block hash of an event, not only the first.
    bool verbose = false;
    /// With kJson: how integer block hashes are written.
    HashStyle hash_style = HashStyle::kNumber;
};

/// Prints what any number of clients deliver, one line per event, serialised across their threads.
class StreamPrinter {
public:
    StreamPrinter(PrinterOptions options, std::ostream& out, std::ostream& err);

    void print_batch(const ReceivedBatch& batch);
    void print_notice(const StreamNotice& notice);
    /// One line of a client's statistics, to the error stream.
    void print_stats(const std::string& pod_key, const ClientStats& stats);
    /// One line of a publisher's hashing check, to the error stream.
    void print_hashing(const std::string& pod_key, const HashingCheck::PublisherResult& result);

    std::uint64_t events_printed() const { return events_printed_; }
    bool reached_max() const { return reached_max_; }

private:
    void write_text_event(const ReceivedBatch& batch, std::size_t index);
    void write_text_hashes(const std::vector<BlockHash>& hashes);

    const PrinterOptions options_;
    std::ostream& out_;
    std::ostream& err_;
    std::mutex mu_;  // guards the streams and json_
    JsonWriter json_;
    std::atomic<std::uint64_t> events_printed_{0};
    std::atomic<bool> reached_max_{false};
};

/// The per-client EventHandler that feeds a shared StreamPrinter.
class PrintingHandler final : public EventHandler {
public:
    explicit PrintingHandler(StreamPrinter& printer) : printer_(printer) {}
    void on_batch(ReceivedBatch& batch) override { printer_.print_batch(batch); }
    void on_notice(const StreamNotice& notice) override { printer_.print_notice(notice); }

private:
    StreamPrinter& printer_;
};

/// How output names a publisher: its pod key, with "#dp<rank>" for ranks above 0.
std::string publisher_label(const std::string& pod_key, int data_parallel_rank);

/// "batches=12 events=30 ..." for one client.
std::string format_stats(const ClientStats& stats);

/// "match matched=12 mismatched=0 unverifiable=1 ..." for one publisher's hashing check.
std::string format_hashing(const HashingCheck::PublisherResult& result);

}  // namespace kvevents::cli
