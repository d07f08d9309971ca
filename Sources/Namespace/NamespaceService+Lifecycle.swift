import Foundation
import Logging

/// A device's life after its introduction: renamed, its credential renewed, removed.
///
/// Revocation is by the namespace's registry, not by short-lived certificates: a removed
/// device's row is deleted (its name kept as a tombstone, `DeviceRemoval`) in the same
/// transaction that logs the removal, and every service that acts for a device asks the
/// registry first: the namespace on each request (`NamespaceRoutes` checks the caller is still
/// registered: one indexed read), the proxy on each device request by resolving the caller
/// (one round trip it pays beside the target's resolution). So a removal takes effect at the
/// next request, everywhere, without waiting for a certificate to expire, and without a list
/// to distribute. Short-lived certificates would make that delay their lifetime (a second
/// would mean a renewal per second per device). Because a removed name is never certified
/// again, an old certificate can never come to name a live device. Renewal (`renewCredential`)
/// exists so the agent can replace its certificate before it expires (the validity is the
/// namespace's `credentialValidity`), with the same key or a new one.
extension NamespaceService {
    /// The longest display name, in characters.
    public static let maximumLabelLength = 64

    /// Removes `did` from its group for good, asked by `remover` (a device of the same user,
    /// the device itself included). Its row goes, its name stays retired, the log records
    /// `deviceRemoved` (and, when the ranking named it, a ranking without it). The last device
    /// of a group can't be removed: nothing could speak for the user afterwards.
    @discardableResult
    public func remove(device did: DeviceID, by remover: DeviceID) async throws -> DeviceRemoval {
        guard did.user == remover.user else {
            throw NamespaceError.forbidden("\(did) is a device of another user: \(remover) may remove only \(remover.user)'s devices")
        }
        let clock = self.clock
        let removal = try await store.transaction { tx in
            let group = try await Self.requireGroup(did.user, in: tx)
            _ = try await Self.requireDevice(remover, in: tx)
            guard let device = try await tx.device(did) else {
                if let gone = try await tx.removal(of: did) {
                    throw NamespaceError.notFound("device \(did) was removed already (at \(gone.removedMillis) by \(gone.by))")
                }
                throw NamespaceError.notFound("device \(did) is not registered")
            }
            guard try await tx.devices(of: did.user).count > 1 else {
                throw NamespaceError.conflict("\(did) is the last device of \(did.user): a group keeps at least one device (introduce another first)")
            }
            let now = clock()
            let recorded = try await Self.bump(group, now: now, in: tx)
            try await Self.record(.deviceRemoved, by: did, at: now, recorded: recorded, device: device, in: tx)
            try await tx.removeDevice(did, removedMillis: now, by: remover)
            if group.preferences.contains(did) {
                let ranking = group.preferences.filter { $0 != did }
                try await Self.record(.preferences(ranking), by: remover, at: max(now, group.preferencesStamp?.timeMillis ?? now),
                                      recorded: recorded, group: group, in: tx)
            }
            return DeviceRemoval(did: did, removedMillis: now, by: remover)
        }
        logger.notice("device removed: its credential no longer works", metadata: ["device": "\(did)", "by": "\(remover)"])
        return removal
    }

    /// Gives `did` the display name `label` (its DID stays), as of `atMillis` on the editing
    /// device's clock; last writer wins like every other field.
    public func rename(device did: DeviceID, to label: String, by editor: DeviceID, atMillis: Int64) async throws -> DeviceRecord {
        guard did.user == editor.user else {
            throw NamespaceError.forbidden("\(did) is a device of another user: \(editor) may rename only \(editor.user)'s devices")
        }
        let label = try Self.validatedLabel(label)
        let clock = self.clock
        return try await store.transaction { tx in
            let now = clock()
            try Self.checkEditTime(atMillis, now: now)
            let group = try await Self.requireGroup(did.user, in: tx)
            _ = try await Self.requireDevice(editor, in: tx)
            guard let device = try await tx.device(did) else { throw NamespaceError.notFound(try await Self.absence(of: did, in: tx)) }
            let recorded = try await Self.bump(group, now: now, in: tx)
            try await Self.record(.deviceRenamed(label), by: did, at: atMillis, recorded: recorded, device: device, in: tx)
            return try await Self.requireDevice(did, in: tx).record
        }
    }

    /// The device renews its own credential: the key it is now certified for is `key` (the same
    /// or a new one). Nothing is logged: the group's state does not change.
    public func renewCredential(of did: DeviceID, key: KeyFingerprint) async throws -> DeviceRecord {
        let record = try await store.transaction { tx in
            let device = try await Self.requireDevice(did, in: tx)
            if device.key != key { try await tx.setKey(of: did, to: key) }
            return device.record
        }
        logger.info("device credential renewed", metadata: ["device": "\(did)"])
        return record
    }

    /// Why `did` may not act any more: nil while it is registered; otherwise its removal (or
    /// that it was never registered) as a sentence.
    public func refusal(of did: DeviceID) async throws -> String? {
        try await store.read { tx in
            if try await tx.device(did) != nil { return nil }
            return try await Self.absence(of: did, in: tx)
        }
    }

    /// Why `did`, not in the registry, is not: removed (when, by whom) or never registered.
    static func absence(of did: DeviceID, in tx: any NamespaceTransaction) async throws -> String {
        if let gone = try await tx.removal(of: did) {
            return "device \(did) was removed from its group (at \(gone.removedMillis) by \(gone.by)): its credential no longer works"
        }
        return "device \(did) is not registered with this namespace"
    }

    /// The tombstone of `did`, if it was removed.
    public func removal(of did: DeviceID) async throws -> DeviceRemoval? {
        try await store.read { tx in try await tx.removal(of: did) }
    }

    /// A display name: 1 to `maximumLabelLength` characters, no control characters, not blank.
    static func validatedLabel(_ label: String, what: String = "device name") throws -> String {
        guard !label.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw NamespaceError.invalid("\(what) \"\(label)\": empty")
        }
        guard label.count <= maximumLabelLength else {
            throw NamespaceError.invalid("\(what): \(label.count) characters (at most \(maximumLabelLength))")
        }
        guard !label.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw NamespaceError.invalid("\(what): control characters are not allowed")
        }
        return label
    }
}
