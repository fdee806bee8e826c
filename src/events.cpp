#include <variant>

#include <kvevents/events.h>

namespace kvevents {

const char* event_type_name(const Event& event) {
    return std::visit(Overloaded{
                          [](const BlockStored&) { return "BlockStored"; },
                          [](const BlockRemoved&) { return "BlockRemoved"; },
                          [](const AllBlocksCleared&) { return "AllBlocksCleared"; },
                      },
                      event);
}

std::string token_ids_to_bytes(const std::vector<std::int64_t>& token_ids) {
    std::string out(token_ids.size() * 4, '\0');
    for (std::size_t i = 0; i < token_ids.size(); ++i) {
        const auto id = static_cast<std::uint32_t>(token_ids[i]);
        out[4 * i] = static_cast<char>(id >> 24);
        out[4 * i + 1] = static_cast<char>(id >> 16);
        out[4 * i + 2] = static_cast<char>(id >> 8);
        out[4 * i + 3] = static_cast<char>(id);
    }
    return out;
}

}  // namespace kvevents
