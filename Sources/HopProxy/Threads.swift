// Thread-local objects and a mutex-guarded box: the reactors' per-thread state and the state
// they share with the main thread.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One object per thread (a pthread key): each thread sees the value it set. The values are
/// retained while set and released when the thread ends (or when the key's owner goes).
final class ThreadLocal<Value: AnyObject>: @unchecked Sendable {
    // @unchecked: the key is created once; each thread reads and writes only its own slot.
    private var key = pthread_key_t()

    init() {
        let rc = pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
    }

    deinit { pthread_key_delete(key) }

    var value: Value? {
        get {
            guard let p = pthread_getspecific(key) else { return nil }
            return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? Value
        }
        set {
            if let old = pthread_getspecific(key) { Unmanaged<AnyObject>.fromOpaque(old).release() }
            let new = newValue.map { Unmanaged<AnyObject>.passRetained($0 as AnyObject).toOpaque() }
            pthread_setspecific(key, new)
        }
    }
}

/// A value behind a pthread mutex.
///
/// `@unchecked Sendable`: every access to `value` goes through `withLock`, which holds the
/// mutex, so the box may be shared between event-loop threads and the main thread.
final class LockedBox<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    @discardableResult
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
