import Logging

/// Registration of users and proxies, introduction of devices (SMP draft §6.2.1, §6.2.2).
extension NamespaceService {
    /// Creates the user's group with `name` as its first device, online, certified for `key`.
    ///
    /// Idempotent for the same request (issue 10, finding 5: a registration committed but never
    /// answered left its user unregistrable): when the user exists and `name` is its first
    /// device, certified for this same `key`, the answer is that device's record and nothing
    /// changes. Any other repeat (another device, another key, or no key on either side) is a
    /// conflict with the reason.
    public func registerUser(_ user: UserID, firstDevice name: String, key: KeyFingerprint? = nil) async throws -> DeviceRecord {
        let did = try DeviceID(name: name, user: user)
        let clock = self.clock
        let (record, repeated) = try await store.transaction { tx in
            if try await tx.group(user, forUpdate: true) != nil {
                guard let first = try await tx.firstDevice(of: user), first == did else {
                    throw NamespaceError.conflict("user \(user) is registered already (with another first device than \(name))")
                }
                return (try await Self.repeated(did, key: key, what: "user \(user) is registered already", in: tx), true)
            }
            let now = clock()
            try await tx.insertGroup(user, registeredMillis: now)
            try await Self.record(.deviceAdded, by: did, at: now, recorded: now, in: tx)
            try await Self.record(.status(.online), by: did, at: now, recorded: now, in: tx)
            if let key { try await tx.setKey(of: did, to: key) }
            return (try await Self.requireDevice(did, in: tx).record, false)
        }
        logger.info(repeated ? "user registration repeated with the same key" : "user registered",
                    metadata: ["user": "\(user)", "device": "\(did)"])
        return record
    }

    /// Adds device `name`, certified for `key`, to the group of an existing device's user. The
    /// new device is offline until its first heartbeat. Idempotent like `registerUser`: an
    /// introduction of an existing device with the key it was certified for answers its record
    /// and changes nothing; with another key (or none) it is a conflict.
    public func introduce(device name: String, by introducer: DeviceID, key: KeyFingerprint? = nil) async throws -> DeviceRecord {
        let did = try DeviceID(name: name, user: introducer.user)
        let clock = self.clock
        let (record, repeated) = try await store.transaction { tx in
            let group = try await Self.requireGroup(introducer.user, in: tx)
            guard try await tx.device(introducer) != nil else {
                throw NamespaceError.notFound("introducer \(introducer) is not a registered device")
            }
            if try await tx.device(did) != nil {
                return (try await Self.repeated(did, key: key, what: "device \(did) exists already", in: tx), true)
            }
            if let gone = try await tx.removal(of: did) {
                throw NamespaceError.conflict("device \(did) was removed (at \(gone.removedMillis)) and its name is retired, so that its old certificates stay void: pick another name")
            }
            let now = clock()
            let recorded = try await Self.bump(group, now: now, in: tx)
            try await Self.record(.deviceAdded, by: did, at: now, recorded: recorded, in: tx)
            if let key { try await tx.setKey(of: did, to: key) }
            return (try await Self.requireDevice(did, in: tx).record, false)
        }
        logger.info(repeated ? "device introduction repeated with the same key" : "device introduced",
                    metadata: ["device": "\(did)", "introducer": "\(introducer)"])
        return record
    }

    /// The record of existing device `did` for a repeated registration or introduction with
    /// `key`, or a conflict (`what`, then why) when it is not the same request again.
    private static func repeated(_ did: DeviceID, key: KeyFingerprint?, what: String,
                                 in tx: any NamespaceTransaction) async throws -> DeviceRecord {
        let device = try await requireDevice(did, in: tx)
        guard let key else { throw NamespaceError.conflict("\(what): pick another name") }
        guard let stored = device.key else {
            throw NamespaceError.conflict("\(what), and no key is on record for it (certified before keys were kept): a repeat can't be told from a takeover")
        }
        guard stored == key else {
            throw NamespaceError.conflict("\(what), certified for another key: a repeat must carry a CSR for the same key")
        }
        return device.record
    }

    /// Registers a proxy (gateway) by name, same grammar as device names.
    /// Idempotent like `registerUser`: the same name with the key it was certified for again
    /// changes nothing and succeeds; another key (or none) is a conflict.
    public func registerProxy(name: String, key: KeyFingerprint? = nil) async throws {
        let name = try DeviceID.validatedName(name, what: "proxy name")
        let clock = self.clock
        let repeated = try await store.transaction { tx in
            if try await tx.proxyExists(name) {
                let what = "proxy \(name) is registered already"
                guard let key else { throw NamespaceError.conflict(what) }
                guard let stored = try await tx.proxyKey(name) else {
                    throw NamespaceError.conflict("\(what), and no key is on record for it (certified before keys were kept): a repeat can't be told from a takeover")
                }
                guard stored == key else {
                    throw NamespaceError.conflict("\(what), certified for another key: a repeat must carry a CSR for the same key")
                }
                return true
            }
            try await tx.insertProxy(name, registeredMillis: clock(), key: key)
            return false
        }
        logger.info(repeated ? "proxy registration repeated with the same key" : "proxy registered", metadata: ["proxy": "\(name)"])
    }
}
