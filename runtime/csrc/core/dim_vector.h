#pragma once
// DimVector: sizes/strides with inline storage for the common case (<= 6 dims), so creating a
// tensor does not allocate for its metadata. Falls back to the heap beyond that.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <span>

namespace ember {

class DimVector {
 public:
  static constexpr int kInline = 6;
  DimVector() = default;
  explicit DimVector(size_t n, int64_t value = 0) { resize(n, value); }
  DimVector(std::initializer_list<int64_t> xs) { assign(xs.begin(), xs.size()); }
  DimVector(std::span<const int64_t> xs) { assign(xs.data(), xs.size()); }
  template <typename It>
  DimVector(It first, It last) { for (; first != last; ++first) push_back(*first); }
  DimVector(const DimVector& o) { assign(o.data(), o.size()); }
  DimVector(DimVector&& o) noexcept { move_from(o); }
  DimVector& operator=(const DimVector& o) { if (this != &o) { size_ = 0; assign(o.data(), o.size()); } return *this; }
  DimVector& operator=(DimVector&& o) noexcept { if (this != &o) { heap_.reset(); cap_ = kInline; move_from(o); } return *this; }

  int64_t* data() { return heap_ ? heap_.get() : inline_; }
  const int64_t* data() const { return heap_ ? heap_.get() : inline_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t& operator[](size_t i) { return data()[i]; }
  int64_t operator[](size_t i) const { return data()[i]; }
  int64_t* begin() { return data(); }
  int64_t* end() { return data() + size_; }
  const int64_t* begin() const { return data(); }
  const int64_t* end() const { return data() + size_; }
  int64_t& back() { return data()[size_ - 1]; }
  int64_t back() const { return data()[size_ - 1]; }
  operator std::span<const int64_t>() const { return {data(), size_}; }
  std::span<const int64_t> span() const { return {data(), size_}; }

  void reserve(size_t n) {
    if (n <= cap_) return;
    std::unique_ptr<int64_t[]> h(new int64_t[n]);
    std::memcpy(h.get(), data(), size_ * sizeof(int64_t));
    heap_ = std::move(h);
    cap_ = n;
  }
  void resize(size_t n, int64_t value = 0) {
    reserve(n);
    for (size_t i = size_; i < n; ++i) data()[i] = value;
    size_ = n;
  }
  void push_back(int64_t v) { if (size_ == cap_) reserve(cap_ * 2); data()[size_++] = v; }
  void pop_back() { --size_; }
  void insert(size_t pos, int64_t v) {
    push_back(0);
    int64_t* d = data();
    std::memmove(d + pos + 1, d + pos, (size_ - 1 - pos) * sizeof(int64_t));
    d[pos] = v;
  }
  void erase(size_t pos) {
    int64_t* d = data();
    std::memmove(d + pos, d + pos + 1, (size_ - pos - 1) * sizeof(int64_t));
    --size_;
  }
  bool operator==(const DimVector& o) const { return size_ == o.size_ && std::equal(begin(), end(), o.begin()); }
  bool operator==(std::span<const int64_t> o) const { return size_ == o.size() && std::equal(begin(), end(), o.begin()); }

 private:
  void assign(const int64_t* p, size_t n) { reserve(n); std::memcpy(data(), p, n * sizeof(int64_t)); size_ = n; }
  void move_from(DimVector& o) {
    if (o.heap_) { heap_ = std::move(o.heap_); cap_ = o.cap_; size_ = o.size_; }
    else { std::memcpy(inline_, o.inline_, o.size_ * sizeof(int64_t)); size_ = o.size_; }
    o.size_ = 0; o.cap_ = kInline;
  }
  int64_t inline_[kInline];
  std::unique_ptr<int64_t[]> heap_;
  size_t size_ = 0;
  size_t cap_ = kInline;
};

inline std::ostream& operator<<(std::ostream& os, const DimVector& v) {
  os << '[';
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  return os << ']';
}

using IntSpan = std::span<const int64_t>;

}  // namespace ember
