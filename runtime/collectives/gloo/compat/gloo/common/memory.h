// Stand-in for gloo/common/memory.h, which Debian's libgloo-dev
// (0.0~git20220518) does not install although its tcp transport headers
// include it. Only abortable_transport.cc includes those headers; CMake adds
// this folder to the include path only when the system header is missing.
// Invariants: the three types below must have exactly the layout and
// behaviour of the ones libgloo was compiled with (they are members of
// tcp::Pair and tcp::UnboundBuffer): a weak handle (std::weak_ptr), a
// short-lived strong handle (std::shared_ptr) obtained from it only while the
// object lives, and a root handle (a std::shared_ptr with a no-op deleter)
// whose destructor waits until no strong handle is left.
#pragma once

#include <memory>
#include <thread>

namespace gloo {

template <typename T>
class WeakNonOwningPtr;
template <typename T>
class ShareableNonOwningPtr;

// A strong handle: keeps the object's destructor waiting while it exists.
template <typename T>
class NonOwningPtr final {
 public:
  NonOwningPtr() {}
  explicit NonOwningPtr(const WeakNonOwningPtr<T>& weak) : ptr_(weak.ptr_.lock()) {}
  T* operator->() const noexcept { return ptr_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(ptr_); }

 private:
  std::shared_ptr<T> ptr_;
};

// A weak handle, handed to the I/O thread.
template <typename T>
class WeakNonOwningPtr final {
 public:
  WeakNonOwningPtr() {}
  explicit WeakNonOwningPtr(const ShareableNonOwningPtr<T>& root) : ptr_(root.ptr_) {}
  // True when it was made from a root (even if that root is gone).
  explicit operator bool() const noexcept {
    const std::weak_ptr<T> empty;
    return ptr_.owner_before(empty) || empty.owner_before(ptr_);
  }

 protected:
  std::weak_ptr<T> ptr_;
  friend class NonOwningPtr<T>;
};

// The root handle, a member of the object it points to.
template <typename T>
class ShareableNonOwningPtr final {
 public:
  explicit ShareableNonOwningPtr(T* t) : ptr_(t, [](void*) {}) {}
  ShareableNonOwningPtr(const ShareableNonOwningPtr&) = delete;
  ShareableNonOwningPtr& operator=(const ShareableNonOwningPtr&) = delete;
  ~ShareableNonOwningPtr() {
    std::weak_ptr<T> weak(ptr_);
    ptr_.reset();
    while (!weak.expired()) std::this_thread::yield();
  }

 protected:
  std::shared_ptr<T> ptr_;
  friend class WeakNonOwningPtr<T>;
};

}  // namespace gloo
