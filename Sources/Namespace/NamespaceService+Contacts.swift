import Logging

/// Friends (SMP draft §6.2.2, user introduction by centralized coordination): a device asks
/// for another user as a contact; the request reaches every device of that user in heartbeat
/// answers (`HeartbeatAnswer.introductions`) and any one of them confirms it; then each user's
/// group holds the other as a contact, under a name of its owner's choosing (changeable; the
/// UID stays). Either side ends the friendship for both. Contacts are fields of the group like
/// any other: each change is a `Change.contact` entry in the log of the group it changes, last
/// writer wins per contact, so every replica converges on them too.
extension NamespaceService {
    /// `asker`'s user asks to become `target`'s contact and will call it `name`. Repeating a
    /// pending request answers it again; asking someone who asked you first is a conflict (accept
    /// theirs); yourself, an existing contact, or an unknown user are refused with the reason.
    public func requestContact(_ target: UserID, by asker: DeviceID, name: String) async throws -> Introduction {
        guard target != asker.user else {
            throw NamespaceError.invalid("you can't introduce yourself (\(target)): a contact is another user")
        }
        let name = try Self.validatedLabel(name, what: "contact name")
        let clock = self.clock
        let (introduction, repeated) = try await store.transaction { tx in
            _ = try await Self.requireGroup(asker.user, in: tx)
            _ = try await Self.requireDevice(asker, in: tx)
            guard try await tx.group(target, forUpdate: false) != nil else {
                throw NamespaceError.notFound("user \(target) is not registered")
            }
            if try await tx.contact(of: asker.user, target) != nil {
                throw NamespaceError.conflict("\(target) is your contact already")
            }
            if let pending = try await tx.introduction(from: asker.user, to: target) { return (pending, true) }
            if let theirs = try await tx.introduction(from: target, to: asker.user) {
                throw NamespaceError.conflict("\(target) asked you first: accept their request \(theirs.id) (tsmp contacts accept \(theirs.id))")
            }
            return (try await tx.insertIntroduction(from: asker, to: target, name: name, createdMillis: clock()), false)
        }
        if !repeated {
            logger.info("contact requested", metadata: ["by": "\(asker)", "to": "\(target)", "introduction.id": "\(introduction.id)"])
        }
        return introduction
    }

    /// A device of the addressed user confirms request `id`, calling the asker `name`: both groups
    /// get the other as a contact (the asker's under the name it gave), the request goes.
    public func acceptContact(_ id: Int64, by device: DeviceID, name: String) async throws -> StoredContact {
        let name = try Self.validatedLabel(name, what: "contact name")
        let clock = self.clock
        let contact = try await store.transaction { tx in
            guard let request = try await tx.introduction(id) else {
                throw NamespaceError.notFound("introduction \(id) is not pending (accepted, declined, or never made)")
            }
            guard request.to == device.user else {
                throw NamespaceError.forbidden("introduction \(id) is addressed to \(request.to): only its devices may confirm it (you are \(device))")
            }
            _ = try await Self.requireDevice(device, in: tx)
            // Both groups, locked in UID order (two acceptances at once can't deadlock).
            let users = [request.from.user, request.to].sorted()
            var groups: [UserID: StoredGroup] = [:]
            for user in users { groups[user] = try await Self.requireGroup(user, in: tx) }
            try await tx.deleteIntroduction(id)
            let now = clock()
            let mine = try await Self.recordContact(in: try Self.unwrap(groups[request.to]), contact: request.from.user, name: name,
                                                    by: device, at: now, now: now, in: tx)
            _ = try await Self.recordContact(in: try Self.unwrap(groups[request.from.user]), contact: request.to, name: request.name,
                                             by: request.from, at: now, now: now, in: tx)
            return mine
        }
        logger.info("contact accepted", metadata: ["introduction.id": "\(id)", "by": "\(device)", "contact": "\(contact.user)"])
        return contact
    }

    /// Either side drops pending request `id` (the asker withdraws it, the addressed user declines).
    public func dropContactRequest(_ id: Int64, by device: DeviceID) async throws -> Introduction {
        try await store.transaction { tx in
            guard let request = try await tx.introduction(id) else {
                throw NamespaceError.notFound("introduction \(id) is not pending (accepted, declined, or never made)")
            }
            guard request.to == device.user || request.from.user == device.user else {
                throw NamespaceError.forbidden("introduction \(id) is between \(request.from.user) and \(request.to), not yours (you are \(device))")
            }
            _ = try await Self.requireDevice(device, in: tx)
            try await tx.deleteIntroduction(id)
            return request
        }
    }

    /// `device`'s user ends the friendship with `other`: neither holds the other any more.
    public func removeContact(_ other: UserID, by device: DeviceID) async throws {
        let clock = self.clock
        try await store.transaction { tx in
            let users = [device.user, other].sorted()
            var groups: [UserID: StoredGroup] = [:]
            for user in users { groups[user] = try await tx.group(user, forUpdate: true) }
            _ = try await Self.requireDevice(device, in: tx)
            guard let mine = groups[device.user], try await tx.contact(of: device.user, other) != nil else {
                throw NamespaceError.notFound("\(other) is not your contact")
            }
            let now = clock()
            _ = try await Self.recordContact(in: mine, contact: other, name: nil, by: device, at: now, now: now, in: tx)
            if let theirs = groups[other], try await tx.contact(of: other, device.user) != nil {
                _ = try await Self.recordContact(in: theirs, contact: device.user, name: nil, by: device, at: now, now: now, in: tx)
            }
        }
        logger.info("contact removed", metadata: ["by": "\(device)", "contact": "\(other)"])
    }

    /// The owner's new name for contact `other`, as of `atMillis` on the editing device's clock.
    public func renameContact(_ other: UserID, to name: String, by device: DeviceID, atMillis: Int64) async throws -> StoredContact {
        let name = try Self.validatedLabel(name, what: "contact name")
        let clock = self.clock
        return try await store.transaction { tx in
            let now = clock()
            try Self.checkEditTime(atMillis, now: now)
            let group = try await Self.requireGroup(device.user, in: tx)
            _ = try await Self.requireDevice(device, in: tx)
            guard try await tx.contact(of: device.user, other) != nil else { throw NamespaceError.notFound("\(other) is not your contact") }
            return try await Self.recordContact(in: group, contact: other, name: name, by: device, at: atMillis, now: now, in: tx)
        }
    }

    /// The user's contacts with their devices' status (no locators: where a friend's device is
    /// stays between it, the namespace and the proxy).
    public func contacts(of user: UserID) async throws -> [ContactRecord] {
        try await store.read { tx in
            _ = try await Self.requireGroup(user, reading: true, in: tx)
            var records: [ContactRecord] = []
            for contact in try await tx.contacts(of: user) {
                let devices = try await tx.devices(of: contact.user).map { Resolution(did: $0.record.did, status: $0.record.status, locator: nil) }
                records.append(ContactRecord(user: contact.user, name: contact.name, devices: devices))
            }
            return records
        }
    }

    /// Pending requests addressed to the user (`incoming`) or made by it.
    public func contactRequests(of user: UserID, incoming: Bool) async throws -> [Introduction] {
        try await store.read { tx in try await tx.introductions(of: user, incoming: incoming) }
    }

    /// Whether each of the two holds the other as a contact.
    public func areFriends(_ a: UserID, _ b: UserID) async throws -> Bool {
        try await store.read { tx in
            guard try await tx.contact(of: a, b) != nil else { return false }
            return try await tx.contact(of: b, a) != nil
        }
    }

    /// Appends `.contact(contact, name)` to `group`'s log (the group's modification time bumped)
    /// and applies it when it is the newest write for that contact.
    static func recordContact(in group: StoredGroup, contact: UserID, name: String?, by device: DeviceID, at time: Int64,
                              now: Int64, in tx: any NamespaceTransaction) async throws -> StoredContact {
        let existing = try await tx.contact(of: group.user, contact)
        // What the namespace does itself is never older than what it replaces.
        let time = name == nil || device.user != group.user ? max(time, existing?.stamp.timeMillis ?? time) : time
        let recorded = try await bump(group, now: now, in: tx)
        let entry = try await tx.appendChange(to: group.user, device: device, timeMillis: time, recordedMillis: recorded,
                                              change: .contact(contact, name: name))
        if existing.map({ $0.stamp < entry.stamp }) ?? true {
            try await tx.setContact(of: group.user, contact, name: name, stamp: entry.stamp)
            return StoredContact(user: contact, name: name ?? existing?.name ?? "", stamp: entry.stamp)
        }
        return existing ?? StoredContact(user: contact, name: name ?? "", stamp: entry.stamp)
    }

    private static func unwrap(_ group: StoredGroup?) throws -> StoredGroup {
        guard let group else { throw NamespaceError.storage("a group locked in this transaction is gone") }
        return group
    }
}

/// One of a user's contacts as the user sees it: the name the user gave it, its devices' status.
public struct ContactRecord: Codable, Sendable, Equatable {
    public var user: UserID
    public var name: String
    public var devices: [Resolution]

    public init(user: UserID, name: String, devices: [Resolution]) {
        self.user = user; self.name = name; self.devices = devices
    }
}
