#include "visitor_baseline.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <msgpack.hpp>

namespace kvevents::bench {
namespace {

// One identifier per field, for positional events its index in the array.
enum class Field : std::uint8_t {
    kNone,
    kType,
    kBlockHashes,
    kParent,
    kTokenIds,
    kBlockSize,
    kLoraId,
    kMedium,
    kLoraName,
    kExtraKeys,
    kGroupIdx,
    kSpecKind,
    kSlidingWindow,
};

constexpr std::array kStoredPositions = {
    Field::kType,      Field::kBlockHashes, Field::kParent,   Field::kTokenIds,
    Field::kBlockSize, Field::kLoraId,      Field::kMedium,   Field::kLoraName,
    Field::kExtraKeys, Field::kGroupIdx,    Field::kSpecKind, Field::kSlidingWindow};
constexpr std::array kRemovedPositions = {Field::kType, Field::kBlockHashes, Field::kMedium,
                                          Field::kGroupIdx};

struct FieldName {
    std::string_view name;
    Field field;
};
constexpr FieldName kFieldNames[] = {
    {"type", Field::kType},
    {"block_hashes", Field::kBlockHashes},
    {"parent_block_hash", Field::kParent},
    {"token_ids", Field::kTokenIds},
    {"block_size", Field::kBlockSize},
    {"lora_id", Field::kLoraId},
    {"medium", Field::kMedium},
    {"lora_name", Field::kLoraName},
    {"extra_keys", Field::kExtraKeys},
    {"group_idx", Field::kGroupIdx},
    {"kv_cache_spec_kind", Field::kSpecKind},
    {"kv_cache_spec_sliding_window", Field::kSlidingWindow},
};

Field field_named(std::string_view name) {
    for (const FieldName& f : kFieldNames) {
        if (f.name == name)
            return f.field;
    }
    return Field::kNone;
}

// Nesting depth at which each part of a batch is visited: the envelope's items at 1, the events
// array's items (events) at 2, an event's fields at 3, the elements of a field's array at 4.
constexpr int kEnvelopeDepth = 1;
constexpr int kEventsDepth = 2;
constexpr int kFieldDepth = 3;
constexpr int kElementDepth = 4;

class EventBuildingVisitor : public msgpack::null_visitor {
public:
    explicit EventBuildingVisitor(EventBatch& batch) : batch_(batch) {}

    bool failed() const { return failed_; }

    bool visit_nil() {
        if (depth_ == kEnvelopeDepth && envelope_item_ == 2)
            batch_.data_parallel_rank.reset();
        else if (depth_ == kFieldDepth)
            set_field_nil();
        return true;
    }
    bool visit_positive_integer(std::uint64_t v) { return visit_integer(v); }
    bool visit_negative_integer(std::int64_t v) { return visit_integer(v); }
    bool visit_float64(double v) {
        if (depth_ == kEnvelopeDepth && envelope_item_ == 0)
            batch_.ts = v;
        return true;
    }
    bool visit_float32(float v) { return visit_float64(static_cast<double>(v)); }
    bool visit_str(const char* v, std::uint32_t size) {
        if (depth_ != kFieldDepth)
            return true;
        const std::string_view text(v, size);
        if (in_key_)
            field_ = field_named(text);
        else
            set_field_string(text);
        return true;
    }
    bool visit_bin(const char* v, std::uint32_t size) {
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(v);
        if (depth_ == kFieldDepth && field_ == Field::kParent && stored_)
            stored_->parent_block_hash = BlockHash::from_digest(bytes, size);
        else if (depth_ == kElementDepth && field_ == Field::kBlockHashes && hashes_)
            hashes_->push_back(BlockHash::from_digest(bytes, size));
        return true;
    }

    bool start_array(std::uint32_t size) {
        if (depth_ == kEnvelopeDepth && envelope_item_ == 1) {
            batch_.events.reserve(size);
        } else if (depth_ == kEventsDepth) {
            start_event(/*positional=*/true);
        } else if (depth_ == kFieldDepth) {
            if (field_ == Field::kBlockHashes && hashes_)
                hashes_->reserve(size);
            else if (field_ == Field::kTokenIds && stored_)
                stored_->token_ids.reserve(size);
        }
        ++depth_;
        return true;
    }
    bool start_array_item() {
        if (depth_ == kEnvelopeDepth) {
            envelope_item_ = next_envelope_item_++;
        } else if (depth_ == kFieldDepth && positional_) {
            field_ = position_field(next_field_position_++);
        }
        return true;
    }
    bool end_array() {
        --depth_;
        return true;
    }
    bool start_map(std::uint32_t /*size*/) {
        if (depth_ == kEventsDepth)
            start_event(/*positional=*/false);
        ++depth_;
        return true;
    }
    bool start_map_key() {
        if (depth_ == kFieldDepth)
            in_key_ = true;
        return true;
    }
    bool start_map_value() {
        if (depth_ == kFieldDepth)
            in_key_ = false;
        return true;
    }
    bool end_map() {
        --depth_;
        return true;
    }
    void parse_error(std::size_t /*parsed_offset*/, std::size_t /*error_offset*/) {
        failed_ = true;
    }
    void insufficient_bytes(std::size_t /*parsed_offset*/, std::size_t /*error_offset*/) {
        failed_ = true;
    }

private:
    static BlockHash hash_of(std::uint64_t v) { return BlockHash::from_unsigned(v); }
    static BlockHash hash_of(std::int64_t v) { return BlockHash::from_signed(v); }

    // Token ids and hashes, the bulk of a batch, are tested for first.
    template <class Integer>
    bool visit_integer(Integer v) {
        if (depth_ == kElementDepth) {
            if (field_ == Field::kTokenIds && stored_)
                stored_->token_ids.push_back(static_cast<std::int64_t>(v));
            else if (field_ == Field::kBlockHashes && hashes_)
                hashes_->push_back(hash_of(v));
        } else if (depth_ == kFieldDepth) {
            if (field_ == Field::kParent && stored_)
                stored_->parent_block_hash = hash_of(v);
            else
                set_field_integer(static_cast<std::int64_t>(v));
        } else if (depth_ == kEnvelopeDepth) {
            set_envelope_number(v);
        }
        return true;
    }

    void start_event(bool positional) {
        positional_ = positional;
        next_field_position_ = 0;
        field_ = Field::kNone;
        in_key_ = false;
        stored_ = nullptr;
        removed_ = nullptr;
        hashes_ = nullptr;
        kind_known_ = false;
    }

    Field position_field(std::size_t position) const {
        if (!kind_known_)
            return position == 0 ? Field::kType : Field::kNone;
        if (stored_)
            return position < kStoredPositions.size() ? kStoredPositions[position] : Field::kNone;
        if (removed_)
            return position < kRemovedPositions.size() ? kRemovedPositions[position] : Field::kNone;
        return Field::kNone;
    }

    template <class T>
    void set_envelope_number(T v) {
        if (envelope_item_ == 0)
            batch_.ts = static_cast<double>(v);
        else if (envelope_item_ == 2)
            batch_.data_parallel_rank = static_cast<std::int64_t>(v);
    }

    void set_type(std::string_view type) {
        kind_known_ = true;
        if (type == "BlockStored") {
            stored_ =
                &std::get<BlockStored>(batch_.events.emplace_back(std::in_place_type<BlockStored>));
            hashes_ = &stored_->block_hashes;
        } else if (type == "BlockRemoved") {
            removed_ = &std::get<BlockRemoved>(
                batch_.events.emplace_back(std::in_place_type<BlockRemoved>));
            hashes_ = &removed_->block_hashes;
        } else if (type == "AllBlocksCleared") {
            batch_.events.emplace_back(std::in_place_type<AllBlocksCleared>);
        }
    }

    void set_field_string(std::string_view text) {
        switch (field_) {
            case Field::kType:
                set_type(text);
                break;
            case Field::kMedium:
                if (stored_)
                    stored_->set_medium(text);
                else if (removed_)
                    removed_->set_medium(text);
                break;
            case Field::kSpecKind:
                if (stored_)
                    stored_->set_kv_cache_spec_kind(text);
                break;
            case Field::kLoraName:
                if (stored_)
                    stored_->extras.ensure().lora_name = std::string(text);
                break;
            default:
                break;
        }
    }

    void set_field_nil() {
        switch (field_) {
            case Field::kMedium:
                if (stored_)
                    stored_->set_medium(std::nullopt);
                else if (removed_)
                    removed_->set_medium(std::nullopt);
                break;
            case Field::kSpecKind:
                if (stored_)
                    stored_->set_kv_cache_spec_kind(std::nullopt);
                break;
            default:
                break;  // every other optional field starts out unset
        }
    }

    void set_field_integer(std::int64_t v) {
        switch (field_) {
            case Field::kBlockSize:
                if (stored_)
                    stored_->block_size = static_cast<std::int32_t>(v);
                break;
            case Field::kLoraId:
                if (stored_)
                    stored_->lora_id = v;
                break;
            case Field::kGroupIdx:
                if (stored_)
                    stored_->group_idx = static_cast<std::int16_t>(v);
                else if (removed_)
                    removed_->group_idx = static_cast<std::int16_t>(v);
                break;
            case Field::kSlidingWindow:
                if (stored_)
                    stored_->extras.ensure().kv_cache_spec_sliding_window = v;
                break;
            default:
                break;
        }
    }

    EventBatch& batch_;
    int depth_ = 0;
    std::size_t envelope_item_ = 0;
    std::size_t next_envelope_item_ = 0;
    std::size_t next_field_position_ = 0;  // of a positional event
    Field field_ = Field::kNone;
    bool positional_ = false;
    bool in_key_ = false;
    bool kind_known_ = false;
    bool failed_ = false;
    // The event being built, the back of batch_.events: stable until the next event is added.
    BlockStored* stored_ = nullptr;
    BlockRemoved* removed_ = nullptr;
    std::vector<BlockHash>* hashes_ = nullptr;
};

}  // namespace

std::optional<EventBatch> decode_via_visitor(const char* data, std::size_t size) {
    EventBatch batch;
    EventBuildingVisitor visitor(batch);
    std::size_t offset = 0;
    if (!msgpack::parse(data, size, offset, visitor) || visitor.failed() || offset != size)
        return std::nullopt;
    return batch;
}

bool parse_with_null_visitor(const char* data, std::size_t size) {
    msgpack::null_visitor visitor;
    std::size_t offset = 0;
    return msgpack::parse(data, size, offset, visitor) && offset == size;
}

}  // namespace kvevents::bench
