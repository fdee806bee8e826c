#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <kvevents/decode.h>

#include "msgpack_reader.h"

namespace kvevents {

using detail::MsgpackReader;
using detail::ReaderError;
using detail::WireInt;
using detail::WireType;

const char* to_string(DecodeErrc code) {
    switch (code) {
        case DecodeErrc::kTruncated:
            return "truncated";
        case DecodeErrc::kLengthExceedsInput:
            return "length exceeds input";
        case DecodeErrc::kTrailingBytes:
            return "trailing bytes";
        case DecodeErrc::kInvalidByte:
            return "invalid byte";
        case DecodeErrc::kWrongType:
            return "wrong type";
        case DecodeErrc::kBadEnvelope:
            return "bad envelope";
        case DecodeErrc::kBadEvent:
            return "bad event";
        case DecodeErrc::kTooDeep:
            return "too deep";
        case DecodeErrc::kBadHash:
            return "bad hash";
        case DecodeErrc::kOutOfRange:
            return "out of range";
        case DecodeErrc::kTooLarge:
            return "too large";
        case DecodeErrc::kOutOfMemory:
            return "out of memory";
    }
    return "unknown";
}

std::string DecodeError::message() const {
    std::string out;
    if (event_index) {
        out += "event " + std::to_string(*event_index) + ", ";
    }
    if (!field.empty()) {
        out += "field " + field + ", ";
    }
    out += "offset " + std::to_string(offset) + ": " + to_string(code);
    if (!detail.empty()) {
        out += ": " + detail;
    }
    return out;
}

namespace {

constexpr std::size_t kNoIndex = std::numeric_limits<std::size_t>::max();
constexpr std::size_t kMaxUnknownTagsKept = 8;
constexpr std::size_t kMaxMalformedEvents = 1024;

// Field identifiers: for positional events the number is the array position (the tag is 0), so
// one setter serves both encodings. Fields only maps carry are numbered past the last position.
enum StoredField : int {
    kStoredBlockHashes = 1,
    kStoredParent,
    kStoredTokenIds,
    kStoredBlockSize,
    kStoredLoraId,
    kStoredMedium,
    kStoredLoraName,
    kStoredExtraKeys,
    kStoredGroupIdx,
    kStoredSpecKind,
    kStoredSlidingWindow,
    kStoredPositionalEnd,  // first position past the last known one
    kStoredLocality = kStoredPositionalEnd,
    kStoredOwnership,
    kStoredSessionId,
    kStoredCacheSalt,
    kStoredUnknown,
};

enum RemovedField : int {
    kRemovedBlockHashes = 1,
    kRemovedMedium,
    kRemovedGroupIdx,
    kRemovedPositionalEnd,
    kRemovedLocality = kRemovedPositionalEnd,
    kRemovedOwnership,
    kRemovedUnknown,
};

struct FieldName {
    std::string_view name;
    int id;
};

constexpr FieldName kStoredFields[] = {
    {"block_hashes", kStoredBlockHashes},
    {"parent_block_hash", kStoredParent},
    {"token_ids", kStoredTokenIds},
    {"block_size", kStoredBlockSize},
    {"lora_id", kStoredLoraId},
    {"medium", kStoredMedium},
    {"lora_name", kStoredLoraName},
    {"extra_keys", kStoredExtraKeys},
    {"group_idx", kStoredGroupIdx},
    {"kv_cache_spec_kind", kStoredSpecKind},
    {"kv_cache_spec_sliding_window", kStoredSlidingWindow},
    {"locality", kStoredLocality},
    {"ownership", kStoredOwnership},
    {"session_id", kStoredSessionId},
    {"cache_salt", kStoredCacheSalt},
};

constexpr FieldName kRemovedFields[] = {
    {"block_hashes", kRemovedBlockHashes}, {"medium", kRemovedMedium},
    {"group_idx", kRemovedGroupIdx},       {"locality", kRemovedLocality},
    {"ownership", kRemovedOwnership},
};

// Looks a map key up in a field table (15 names at most; string_view compares lengths first).
template <std::size_t N>
int field_id(const FieldName (&table)[N], std::string_view key, int unknown) {
    for (const FieldName& f : table) {
        if (f.name == key)
            return f.id;
    }
    return unknown;
}

template <std::size_t N>
const char* field_label(const FieldName (&table)[N], int id) {
    // The tables list fields in id order starting at 1.
    const auto slot = static_cast<std::size_t>(id - 1);
    return slot < N ? table[slot].name.data() : "";
}

// Builds an event in place at the end of the batch (events are large; moving them costs) and
// takes it back out unless keep() is called, i.e. when decoding it threw.
template <class T>
class EventSlot {
public:
    explicit EventSlot(std::vector<Event>& events) : events_(events) {
        events_.emplace_back(std::in_place_type<T>);
    }
    ~EventSlot() {
        if (!kept_)
            events_.pop_back();
    }
    EventSlot(const EventSlot&) = delete;
    EventSlot& operator=(const EventSlot&) = delete;

    T& get() { return std::get<T>(events_.back()); }
    void keep() { kept_ = true; }

private:
    std::vector<Event>& events_;
    bool kept_ = false;
};

std::size_t bounded_reserve(std::uint32_t count, const MsgpackReader& r) {
    return std::min<std::size_t>(count, r.remaining());
}

// Decodes one payload. Field context (`field_`, `index_`) is kept as cheap pointers and an index
// and only turned into text when an error is reported.
class BatchDecoder {
public:
    BatchDecoder(const std::uint8_t* data,
                 std::size_t size,
                 const DecodeLimits& limits,
                 DecodeResult& out)
        : reader_(data, size),
          limits_(limits),
          out_(out),
          limit_(heap_limit(size, limits)),
          budget_(limit_ - std::min(limit_, kBookkeeping)) {}

    static std::size_t heap_limit(std::size_t size, const DecodeLimits& limits) {
        const std::size_t max = std::numeric_limits<std::size_t>::max();
        const std::size_t factor = limits.heap_per_payload_byte;
        const std::size_t scaled = factor != 0 && size > max / factor ? max : size * factor;
        return scaled > max - limits.heap_allowance ? max : scaled + limits.heap_allowance;
    }

    void run() {
        try {
            decode_envelope();
            if (!reader_.at_end()) {
                reader_.fail(DecodeErrc::kTrailingBytes,
                             std::to_string(reader_.remaining()) + " bytes after the envelope");
            }
        } catch (const ReaderError& e) {
            out_.fatal = make_error(e, std::nullopt);
        }
    }

private:
    // Every heap allocation the decode makes is charged here first, and a charge is given back
    // only once its block is known to be freed, so the sum of live allocations cannot pass the
    // budget whatever the payload declares.
    void charge(const MsgpackReader& r, std::size_t bytes) {
        if (bytes > budget_ - charged_)
            fail_budget(r);
        charged_ += bytes;
    }

    // Out of line: the message is built only on this cold path.
    [[noreturn]] __attribute__((noinline)) void fail_budget(const MsgpackReader& r) const {
        r.fail(DecodeErrc::kTooLarge,
               "decoding would take over " + std::to_string(limit_) + " bytes of heap (" +
                   std::to_string(limits_.heap_per_payload_byte) + " per payload byte + " +
                   std::to_string(limits_.heap_allowance) + ")");
    }

    // libstdc++'s std::string keeps up to 15 bytes inline (the build's library; libc++ would
    // differ).
    void charge_text(const MsgpackReader& r, std::size_t length) {
        if (length > 15)
            charge(r, length + 1);
    }

    template <class T>
    void reserve_charged(const MsgpackReader& r, std::vector<T>& v, std::size_t count) {
        if (count > v.capacity()) {
            charge(r, count * sizeof(T));
            v.reserve(count);
        }
    }

    // Room for one more element: the new block is charged before it is allocated, and the old
    // one given back once growing has freed it.
    template <class T>
    void make_room(const MsgpackReader& r, std::vector<T>& v) {
        if (v.size() < v.capacity())
            return;
        const std::size_t old_bytes = v.capacity() * sizeof(T);
        reserve_charged(r, v, std::max<std::size_t>(1, v.capacity() * 2));
        charged_ -= old_bytes;
    }

    template <class T>
    T& extras_of(const MsgpackReader& r, Extras<T>& extras) {
        if (!extras)
            charge(r, sizeof(T));
        return extras.ensure();
    }

    DecodeError make_error(const ReaderError& e, std::optional<std::size_t> event_index) const {
        DecodeError err;
        err.code = e.code;
        err.offset = e.offset;
        err.event_index = event_index;
        err.field = field_;
        if (index_ != kNoIndex) {
            err.field += "[" + std::to_string(index_) + "]";
        }
        err.detail = e.detail;
        return err;
    }

    void set_field(const char* name, std::size_t index = kNoIndex) {
        field_ = name;
        index_ = index;
    }

    void decode_envelope() {
        const WireType root = reader_.peek_type();
        if (root == WireType::kArray) {
            decode_array_envelope(reader_.read_array_header());
        } else if (root == WireType::kMap) {
            decode_map_envelope(reader_.read_map_header());
        } else if (root == WireType::kInvalid) {
            reader_.fail_type("array or map");  // kInvalidByte, as for 0xc1 anywhere else
        } else {
            reader_.fail(
                DecodeErrc::kBadEnvelope,
                std::string("root is ") + detail::wire_type_name(root) + ", expected array or map");
        }
    }

    void decode_array_envelope(std::uint32_t size) {
        out_.shape.envelope_size = size;
        if (size < 2) {
            reader_.fail(DecodeErrc::kBadEnvelope, "envelope array has " + std::to_string(size) +
                                                       " elements, expected at least 2");
        }
        set_field("ts");
        out_.batch.ts = reader_.read_number();
        decode_events();
        if (size >= 3) {
            set_field("data_parallel_rank");
            out_.batch.data_parallel_rank = read_optional_int(reader_);
        }
        set_field("envelope");
        for (std::uint32_t i = 3; i < size; ++i) {
            reader_.skip(limits_.max_depth);
        }
        set_field("");
    }

    void decode_map_envelope(std::uint32_t size) {
        out_.shape.map_envelope = true;
        out_.shape.envelope_size = size;
        bool have_ts = false;
        bool have_events = false;
        for (std::uint32_t i = 0; i < size; ++i) {
            set_field("envelope key");
            const std::string_view key = reader_.read_string();
            if (key == "ts") {
                set_field("ts");
                out_.batch.ts = reader_.read_number();
                have_ts = true;
            } else if (key == "events") {
                decode_events();
                have_events = true;
            } else if (key == "data_parallel_rank") {
                set_field("data_parallel_rank");
                out_.batch.data_parallel_rank = read_optional_int(reader_);
            } else {
                set_field("envelope");
                reader_.skip(limits_.max_depth);
            }
        }
        set_field("");
        if (!have_ts || !have_events) {
            reader_.fail(DecodeErrc::kBadEnvelope, have_ts ? "map envelope has no \"events\" key"
                                                           : "map envelope has no \"ts\" key");
        }
    }

    void decode_events() {
        set_field("events");
        const std::uint32_t count = reader_.read_array_header();
        // The smallest event that is kept, ["BlockStored",[]], takes 14 bytes: reserving by that
        // keeps a payload of tiny junk events from reserving the size of an Event per byte.
        constexpr std::size_t kSmallestKeptEvent = 14;
        // And no more than the budget left: an array of junk that keeps no event must not fail
        // for room it would never have used.
        auto& events = out_.batch.events;
        reserve_charged(reader_, events,
                        std::min({std::size_t{count}, reader_.remaining() / kSmallestKeptEvent,
                                  (budget_ - charged_) / sizeof(Event)}));
        for (std::uint32_t i = 0; i < count; ++i) {
            set_field("events", i);
            make_room(reader_, events);
            // Decode in place; only when an event is bad, step over it from its start, so
            // one malformed event costs its own slot and its valid siblings are kept. An
            // event that cannot even be stepped over leaves the rest unreadable: fatal.
            const MsgpackReader event_start = reader_;
            const WireType type = reader_.peek_type();
            if (type != WireType::kArray && type != WireType::kMap) {
                // The commonest junk is noted without an exception, which costs microseconds.
                set_field("");
                malformed_event(
                    ReaderError{DecodeErrc::kWrongType, reader_.offset(),
                                std::string("event is ") + detail::wire_type_name(type) +
                                    ", expected array or map"},
                    i, event_start);
                continue;
            }
            try {
                decode_event(reader_, type);
            } catch (const ReaderError& e) {
                if (e.code == DecodeErrc::kTooLarge)
                    throw;  // the budget is spent: nothing after this can be decoded
                malformed_event(e, i, event_start);
            }
        }
        set_field("");
    }

    // Counts and (the first few) keeps the error, and steps over the event.
    void malformed_event(const ReaderError& e, std::uint32_t index, const MsgpackReader& start) {
        if (++out_.malformed_events > kMaxMalformedEvents) {
            // A batch of junk must not cost an exception per byte.
            reader_.fail(DecodeErrc::kBadEvent,
                         "more than " + std::to_string(kMaxMalformedEvents) +
                             " malformed events; the rest of the batch is not read");
        }
        reader_ = start;
        try {
            reader_.skip(limits_.max_depth);
        } catch (const ReaderError& structural) {
            set_field("events", index);
            throw ReaderError{
                structural.code, structural.offset,
                "event " + std::to_string(index) + " cannot be stepped over: " + structural.detail};
        }
        if (out_.event_errors.size() < DecodeResult::kMaxEventErrorsKept)
            out_.event_errors.push_back(make_error(e, index));
    }

    void decode_event(MsgpackReader& r, WireType type) {
        set_field("");
        if (type == WireType::kArray) {
            ++out_.shape.positional_events;
            decode_positional_event(r, r.read_array_header());
        } else {
            ++out_.shape.map_events;
            decode_map_event(r);
        }
    }

    std::string_view read_tag(MsgpackReader& r) {
        set_field("type");
        if (r.peek_type() != WireType::kString) {
            r.fail_type("str event tag");
        }
        return r.read_string();
    }

    void note_unknown(std::string_view tag) {
        ++out_.unknown_events;
        auto& tags = out_.unknown_tags;
        if (tags.size() < kMaxUnknownTagsKept &&
            std::find(tags.begin(), tags.end(), tag) == tags.end()) {
            reserve_charged(reader_, tags, kMaxUnknownTagsKept);
            charge_text(reader_, tag.size());
            tags.emplace_back(tag);
        }
    }

    void decode_positional_event(MsgpackReader& r, std::uint32_t size) {
        if (size == 0) {
            r.fail(DecodeErrc::kBadEvent, "event array is empty, expected a tag first");
        }
        const std::string_view tag = read_tag(r);
        if (tag == "BlockStored") {
            EventSlot<BlockStored> slot(out_.batch.events);
            BlockStored& ev = slot.get();
            bool have_hashes = false;
            for (std::uint32_t pos = 1; pos < size; ++pos) {
                if (pos == kStoredLoraName && r.peek_type() == WireType::kMap) {
                    read_stored_metadata(r, ev);  // SGLang's salted 8th element
                    continue;
                }
                const int id = pos < kStoredPositionalEnd ? static_cast<int>(pos) : kStoredUnknown;
                have_hashes |= id == kStoredBlockHashes;
                read_stored_field(r, id, "", ev);
            }
            require_hashes(r, have_hashes, "BlockStored");
            slot.keep();
        } else if (tag == "BlockRemoved") {
            EventSlot<BlockRemoved> slot(out_.batch.events);
            BlockRemoved& ev = slot.get();
            for (std::uint32_t pos = 1; pos < size; ++pos) {
                const int id =
                    pos < kRemovedPositionalEnd ? static_cast<int>(pos) : kRemovedUnknown;
                read_removed_field(r, id, "", ev);
            }
            require_hashes(r, size > 1, "BlockRemoved");
            slot.keep();
        } else {
            // Nothing to read, but the reader must end up past the event's extra elements.
            for (std::uint32_t pos = 1; pos < size; ++pos) {
                r.skip(limits_.max_depth);
            }
            if (tag == "AllBlocksCleared") {
                out_.batch.events.emplace_back(AllBlocksCleared{});
            } else {
                note_unknown(tag);
            }
        }
    }

    void require_hashes(const MsgpackReader& r, bool present, const char* type) {
        if (!present) {
            set_field("block_hashes");
            r.fail(DecodeErrc::kBadEvent, std::string(type) + " has no block_hashes");
        }
    }

    void decode_map_event(MsgpackReader& r) {
        // The tag is normally the first key, but key order is not part of the contract: look it
        // up first, then read the fields in one more pass.
        const MsgpackReader start = r;
        const std::uint32_t size = r.read_map_header();
        std::string_view tag;
        bool have_tag = false;
        for (std::uint32_t i = 0; i < size && !have_tag; ++i) {
            set_field("key");
            const std::string_view key = r.read_string();
            if (key == "type") {
                tag = read_tag(r);
                have_tag = true;
            } else {
                set_field("value");
                r.skip(limits_.max_depth);
            }
        }
        if (!have_tag) {
            set_field("type");
            r.fail(DecodeErrc::kBadEvent, "map event has no \"type\" key");
        }
        r = start;
        r.read_map_header();
        if (tag == "BlockStored") {
            EventSlot<BlockStored> slot(out_.batch.events);
            BlockStored& ev = slot.get();
            bool have_hashes = false;
            for_each_map_field(r, size, [&](std::string_view key) {
                const int id = field_id(kStoredFields, key, kStoredUnknown);
                have_hashes |= id == kStoredBlockHashes;
                read_stored_field(r, id, key, ev);
            });
            require_hashes(r, have_hashes, "BlockStored");
            slot.keep();
        } else if (tag == "BlockRemoved") {
            EventSlot<BlockRemoved> slot(out_.batch.events);
            BlockRemoved& ev = slot.get();
            bool have_hashes = false;
            for_each_map_field(r, size, [&](std::string_view key) {
                const int id = field_id(kRemovedFields, key, kRemovedUnknown);
                have_hashes |= id == kRemovedBlockHashes;
                read_removed_field(r, id, key, ev);
            });
            require_hashes(r, have_hashes, "BlockRemoved");
            slot.keep();
        } else {
            // Nothing to read, but the reader must end up past all of the event's entries.
            r = start;
            r.skip(limits_.max_depth);
            if (tag == "AllBlocksCleared") {
                out_.batch.events.emplace_back(AllBlocksCleared{});
            } else {
                note_unknown(tag);
            }
        }
    }

    // Calls on_field(key) with the reader on each value, skipping the tag.
    template <class OnField>
    void for_each_map_field(MsgpackReader& r, std::uint32_t size, OnField&& on_field) {
        for (std::uint32_t i = 0; i < size; ++i) {
            set_field("key");
            const std::string_view key = r.read_string();
            if (key == "type") {
                r.read_string();  // the tag, already read and checked in the first pass
                continue;
            }
            on_field(key);
        }
    }

    void read_stored_field(MsgpackReader& r, int id, std::string_view key, BlockStored& ev) {
        set_field(id == kStoredUnknown ? "" : field_label(kStoredFields, id));
        switch (id) {
            case kStoredBlockHashes:
                read_hash_list(r, ev.block_hashes);
                break;
            case kStoredParent:
                ev.parent_block_hash.reset();
                if (!r.try_read_nil())
                    ev.parent_block_hash = read_hash(r);
                break;
            case kStoredTokenIds:
                read_token_ids(r, ev);
                break;
            case kStoredBlockSize:
                ev.block_size = read_optional_narrow<std::int32_t>(r);
                break;
            case kStoredLoraId:
                ev.lora_id = read_optional_int(r);
                break;
            case kStoredMedium:
                read_named_code(r, ev.medium, medium_from_name, ev.extras,
                                &BlockStoredExtras::medium_name);
                break;
            case kStoredGroupIdx:
                ev.group_idx = read_optional_narrow<std::int16_t>(r);
                break;
            case kStoredSpecKind:
                read_named_code(r, ev.kv_cache_spec_kind, cache_spec_kind_from_name, ev.extras,
                                &BlockStoredExtras::kv_cache_spec_kind_name);
                break;
            default:
                read_stored_extra(r, id, key, ev.extras);
                break;
        }
    }

    // The rarely sent fields: a nil or absent one allocates nothing.
    void read_stored_extra(MsgpackReader& r,
                           int id,
                           std::string_view key,
                           Extras<BlockStoredExtras>& extras) {
        if (key.empty() && id == kStoredUnknown) {
            r.skip(limits_.max_depth);  // extra positional elements have no name to keep
            return;
        }
        if (r.try_read_nil()) {
            if (extras)
                clear_stored_extra(id, *extras);
            return;
        }
        BlockStoredExtras& x = extras_of(r, extras);
        switch (id) {
            case kStoredLoraName:
                read_string(r, x.lora_name);
                break;
            case kStoredExtraKeys:
                read_extra_keys(r, x.extra_keys);
                break;
            case kStoredSlidingWindow:
                x.kv_cache_spec_sliding_window = read_optional_int(r);
                break;
            case kStoredLocality:
                read_string(r, x.locality);
                break;
            case kStoredOwnership:
                x.ownership = read_value(r, 0);
                break;
            case kStoredSessionId:
                x.session_id = read_value(r, 0);
                break;
            case kStoredCacheSalt:
                read_string(r, x.cache_salt);
                break;
            default:
                keep_unknown(r, key, x.other_fields);
                break;
        }
    }

    // A nil sent again for a field set earlier in the same event (a repeated map key) clears it.
    static void clear_stored_extra(int id, BlockStoredExtras& x) {
        switch (id) {
            case kStoredLoraName:
                x.lora_name.reset();
                break;
            case kStoredExtraKeys:
                x.extra_keys.reset();
                break;
            case kStoredSlidingWindow:
                x.kv_cache_spec_sliding_window.reset();
                break;
            case kStoredLocality:
                x.locality.reset();
                break;
            case kStoredOwnership:
                x.ownership.reset();
                break;
            case kStoredSessionId:
                x.session_id.reset();
                break;
            case kStoredCacheSalt:
                x.cache_salt.reset();
                break;
            default:
                break;
        }
    }

    void read_removed_field(MsgpackReader& r, int id, std::string_view key, BlockRemoved& ev) {
        set_field(id == kRemovedUnknown ? "" : field_label(kRemovedFields, id));
        switch (id) {
            case kRemovedBlockHashes:
                read_hash_list(r, ev.block_hashes);
                break;
            case kRemovedMedium:
                read_named_code(r, ev.medium, medium_from_name, ev.extras,
                                &BlockRemovedExtras::medium_name);
                break;
            case kRemovedGroupIdx:
                ev.group_idx = read_optional_narrow<std::int16_t>(r);
                break;
            default:
                read_removed_extra(r, id, key, ev.extras);
                break;
        }
    }

    void read_removed_extra(MsgpackReader& r,
                            int id,
                            std::string_view key,
                            Extras<BlockRemovedExtras>& extras) {
        if (key.empty() && id == kRemovedUnknown) {
            r.skip(limits_.max_depth);
            return;
        }
        if (r.try_read_nil()) {
            if (extras && id == kRemovedLocality)
                extras->locality.reset();
            if (extras && id == kRemovedOwnership)
                extras->ownership.reset();
            return;
        }
        BlockRemovedExtras& x = extras_of(r, extras);
        switch (id) {
            case kRemovedLocality:
                read_string(r, x.locality);
                break;
            case kRemovedOwnership:
                x.ownership = read_value(r, 0);
                break;
            default:
                keep_unknown(r, key, x.other_fields);
                break;
        }
    }

    // Unknown map keys are kept by name (extra positional elements, which have none, are skipped
    // as msgspec does for array-like structs).
    void keep_unknown(MsgpackReader& r, std::string_view key, std::vector<NamedValue>& fields) {
        set_field("unknown key");
        make_room(r, fields);
        charge_text(r, key.size());
        fields.push_back(NamedValue{std::string(key), read_value(r, 0)});
    }

    void read_stored_metadata(MsgpackReader& r, BlockStored& ev) {
        set_field("metadata");
        const std::uint32_t size = r.read_map_header();
        for (std::uint32_t i = 0; i < size; ++i) {
            set_field("metadata key");
            const std::string_view key = r.read_string();
            set_field("cache_salt");
            read_stored_extra(r, key == "cache_salt" ? kStoredCacheSalt : kStoredUnknown, key,
                              ev.extras);
        }
    }

    BlockHash read_hash(MsgpackReader& r) {
        const WireType type = r.peek_type();
        if (type == WireType::kInt) {
            const WireInt v = r.read_int();
            return v.negative ? BlockHash::from_signed(static_cast<std::int64_t>(v.bits))
                              : BlockHash::from_unsigned(v.bits);
        }
        if (type != WireType::kBinary) {
            r.fail_type("int or bin hash");
        }
        const std::string_view digest = r.read_binary();
        if (digest.empty() || digest.size() > BlockHash::kMaxDigestSize) {
            r.fail(DecodeErrc::kBadHash, "digest of " + std::to_string(digest.size()) +
                                             " bytes, expected 1 to " +
                                             std::to_string(BlockHash::kMaxDigestSize));
        }
        if (digest.size() > 8)
            charge(r, BlockHash::long_digest_heap_bytes());
        return BlockHash::from_digest(reinterpret_cast<const std::uint8_t*>(digest.data()),
                                      digest.size());
    }

    void read_hash_list(MsgpackReader& r, std::vector<BlockHash>& hashes) {
        const char* name = field_;
        const std::uint32_t count = r.read_array_header();
        hashes.clear();
        reserve_charged(r, hashes, bounded_reserve(count, r));
        for (std::uint32_t i = 0; i < count; ++i) {
            set_field(name, i);
            hashes.emplace_back(read_hash(r));
        }
        set_field(name);
    }

    // `at` is where the integer started, so the error points at it rather than past it.
    static std::int64_t to_int64(WireInt v, std::size_t at) {
        if (!v.negative &&
            v.bits > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            throw ReaderError{DecodeErrc::kOutOfRange, at,
                              std::to_string(v.bits) + " does not fit in int64"};
        }
        return static_cast<std::int64_t>(v.bits);
    }

    static std::optional<std::int64_t> read_optional_int(MsgpackReader& r) {
        if (r.try_read_nil())
            return std::nullopt;
        if (r.peek_type() != WireType::kInt) {
            r.fail_type("int or nil");
        }
        const std::size_t at = r.offset();
        return to_int64(r.read_int(), at);
    }

    template <class Narrow>
    static std::optional<Narrow> read_optional_narrow(MsgpackReader& r) {
        const std::size_t at = r.offset();
        const std::optional<std::int64_t> wide = read_optional_int(r);
        if (!wide)
            return std::nullopt;
        if (*wide < std::numeric_limits<Narrow>::min() ||
            *wide > std::numeric_limits<Narrow>::max()) {
            fail_narrow(*wide, at, sizeof(Narrow) == 2 ? "int16" : "int32");
        }
        return static_cast<Narrow>(*wide);
    }

    [[noreturn]] static __attribute__((noinline)) void fail_narrow(std::int64_t value,
                                                                   std::size_t at,
                                                                   const char* type) {
        throw ReaderError{DecodeErrc::kOutOfRange, at,
                          std::to_string(value) + " does not fit in " + type};
    }

    std::string_view read_text(MsgpackReader& r) {
        if (r.peek_type() != WireType::kString) {
            r.fail_type("str or nil");
        }
        const std::string_view text = r.read_string();
        charge_text(r, text.size());
        return text;
    }

    void read_string(MsgpackReader& r, std::optional<std::string>& out) {
        const std::string_view text = read_text(r);
        out.emplace(text);
    }

    // A known name becomes its code; any other is kept whole in the extras.
    template <class Code, class ExtrasT>
    void read_named_code(MsgpackReader& r,
                         Code& code,
                         Code (*from_name)(std::string_view),
                         Extras<ExtrasT>& extras,
                         std::string ExtrasT::*other_text) {
        if (r.try_read_nil()) {
            code = Code::kUnset;
            return;
        }
        if (r.peek_type() != WireType::kString) {
            r.fail_type("str or nil");
        }
        const std::string_view text = r.read_string();
        code = from_name(text);
        if (code == Code::kOther) {
            ExtrasT& x = extras_of(r, extras);
            charge_text(r, text.size());
            // A fresh string: assigning into the old one (a repeated key) could grow it to
            // twice its capacity, more than was charged.
            x.*other_text = std::string(text);
        } else if (extras) {
            ((*extras).*other_text).clear();  // a repeated key: the last one wins
        }
    }

    Value read_value(MsgpackReader& r, std::size_t depth) {
        Value v;
        switch (r.peek_type()) {
            case WireType::kNil:
                r.read_nil();
                break;
            case WireType::kBool:
                v.kind = Value::Kind::kBool;
                v.boolean = r.read_bool();
                break;
            case WireType::kInt: {
                const WireInt i = r.read_int();
                v = i.negative ? Value::signed_integer(static_cast<std::int64_t>(i.bits))
                               : Value::unsigned_integer(i.bits);
                break;
            }
            case WireType::kFloat:
                v.kind = Value::Kind::kFloat;
                v.float_value = r.read_number();
                break;
            case WireType::kString:
                v = Value::string(std::string(read_text(r)));
                break;
            case WireType::kBinary: {
                v.kind = Value::Kind::kBytes;
                const std::string_view bytes = r.read_binary();
                charge_text(r, bytes.size());
                v.text = std::string(bytes);
                break;
            }
            case WireType::kArray:
            case WireType::kMap: {
                if (depth >= limits_.max_depth) {
                    r.fail(DecodeErrc::kTooDeep,
                           "nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
                }
                const bool is_map = r.peek_type() == WireType::kMap;
                const std::uint64_t count = is_map ? std::uint64_t{r.read_map_header()} * 2
                                                   : std::uint64_t{r.read_array_header()};
                v.kind = is_map ? Value::Kind::kMap : Value::Kind::kArray;
                reserve_charged(
                    r, v.items,
                    static_cast<std::size_t>(std::min<std::uint64_t>(count, r.remaining())));
                for (std::uint64_t i = 0; i < count; ++i) {
                    v.items.push_back(read_value(r, depth + 1));
                }
                break;
            }
            case WireType::kExtension:
            case WireType::kInvalid:
                r.fail_type("a plain msgpack value");
                break;
        }
        return v;
    }

    // Not nil: read_stored_extra took that.
    void read_extra_keys(MsgpackReader& r, std::optional<std::vector<ExtraKeyEntry>>& out) {
        out.reset();
        const std::uint32_t count = r.read_array_header();
        std::vector<ExtraKeyEntry> entries;
        reserve_charged(r, entries, bounded_reserve(count, r));
        for (std::uint32_t i = 0; i < count; ++i) {
            set_field("extra_keys", i);
            if (r.try_read_nil()) {
                entries.emplace_back(std::nullopt);
                continue;
            }
            if (r.peek_type() != WireType::kArray) {
                r.fail_type("array or nil");
            }
            Value tuple = read_value(r, 1);
            entries.emplace_back(std::move(tuple.items));
        }
        set_field("extra_keys");
        out = std::move(entries);
    }

    void read_token_ids(MsgpackReader& r, BlockStored& ev) {
        ev.token_ids.clear();
        ev.token_id_form = TokenIdForm::kPlain;
        if (ev.extras) {
            ev.extras->token_id_pair_seconds.clear();
            ev.extras->token_id_strings.clear();
        }
        if (r.try_read_nil())
            return;
        const std::uint32_t count = r.read_array_header();
        if (count == 0)
            return;
        const WireType first = r.peek_type();
        if (first == WireType::kArray) {
            ev.token_id_form = TokenIdForm::kBigram;
            auto& seconds = extras_of(r, ev.extras).token_id_pair_seconds;
            // count is bounded by the bytes left (a pair takes at least 3).
            reserve_charged(r, ev.token_ids, count);
            reserve_charged(r, seconds, count);
            for (std::uint32_t i = 0; i < count; ++i) {
                set_field("token_ids", i);
                if (r.read_array_header() != 2) {
                    r.fail(DecodeErrc::kWrongType, "expected a pair [int, int]");
                }
                ev.token_ids.push_back(read_token(r));
                seconds.push_back(read_token(r));
            }
        } else {
            charge(r, std::size_t{count} * sizeof(std::int64_t));  // count <= the bytes left
            ev.token_ids.resize(count);
            const std::size_t done = r.read_uint_run(ev.token_ids.data(), count);
            ev.token_ids.resize(done);
            for (std::size_t i = done; i < count; ++i) {
                set_field("token_ids", i);
                if (ev.token_id_form == TokenIdForm::kPlain && r.peek_type() == WireType::kString) {
                    switch_to_string_tokens(r, ev, count);
                }
                if (ev.token_id_form == TokenIdForm::kString) {
                    ev.extras->token_id_strings.push_back(read_token_text(r));
                } else {
                    ev.token_ids.push_back(read_token(r));
                }
            }
        }
        set_field("token_ids");
    }

    void switch_to_string_tokens(const MsgpackReader& r, BlockStored& ev, std::size_t count) {
        ev.token_id_form = TokenIdForm::kString;
        auto& strings = extras_of(r, ev.extras).token_id_strings;
        reserve_charged(r, strings, count);
        for (const std::int64_t id : ev.token_ids) {
            strings.push_back(std::to_string(id));
            charge_text(r, strings.back().size());  // charged after: 20 bytes at most
        }
        // The integer buffer is freed, not kept empty in the event: its charge comes back.
        charged_ -= ev.token_ids.capacity() * sizeof(std::int64_t);
        std::vector<std::int64_t>().swap(ev.token_ids);
    }

    static std::int64_t read_token(MsgpackReader& r) {
        const std::size_t at = r.offset();
        return to_int64(r.read_int(), at);
    }

    std::string read_token_text(MsgpackReader& r) {
        if (r.peek_type() == WireType::kString) {
            return std::string(read_text(r));
        }
        std::string text = std::to_string(read_token(r));
        charge_text(r, text.size());
        return text;
    }

    MsgpackReader reader_;
    const DecodeLimits& limits_;
    DecodeResult& out_;
    // What errors cost is not charged but bounded (kMaxEventErrorsKept of them, short texts):
    // this much of the limit is kept back for it.
    static constexpr std::size_t kBookkeeping = 16 * 1024;
    const std::size_t limit_;
    const std::size_t budget_;
    std::size_t charged_ = 0;
    const char* field_ = "";
    std::size_t index_ = kNoIndex;
};

}  // namespace

DecodeResult decode_batch(const void* data, std::size_t size, const DecodeLimits& limits) {
    DecodeResult result;
    if (data == nullptr && size != 0) {
        result.fatal = DecodeError{DecodeErrc::kTruncated, 0, std::nullopt, "", "null buffer"};
        return result;
    }
    static const std::uint8_t kEmpty = 0;
    try {
        BatchDecoder decoder(data ? static_cast<const std::uint8_t*>(data) : &kEmpty, size, limits,
                             result);
        decoder.run();
    } catch (const std::bad_alloc&) {
        result = DecodeResult{};  // frees what was decoded, so the error itself can be built
        result.fatal = DecodeError{DecodeErrc::kOutOfMemory, 0, std::nullopt, "", ""};
    }
    return result;
}

}  // namespace kvevents
