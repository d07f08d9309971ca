@testable import Namespace

/// A store that fails one kind of write in the middle of a transaction, to show that a failed
/// operation leaves nothing behind (the real store under it rolls back).
struct FaultyStore: NamespaceStore {
    enum Fault: Sendable { case insertDevice, setLastHeartbeat }

    let base: any NamespaceStore
    let fault: Fault

    func transaction<R: Sendable>(_ body: @escaping @Sendable (any NamespaceTransaction) async throws -> R) async throws -> R {
        let fault = self.fault
        return try await base.transaction { tx in try await body(FaultyTransaction(base: tx, fault: fault)) }
    }

    func read<R: Sendable>(_ body: @escaping @Sendable (any NamespaceTransaction) async throws -> R) async throws -> R {
        try await base.read(body)
    }

    func close() async { await base.close() }
}

struct FaultyTransaction: NamespaceTransaction {
    let base: any NamespaceTransaction
    let fault: FaultyStore.Fault

    static let injected = NamespaceError.storage("injected failure")

    func group(_ user: UserID, forUpdate: Bool) async throws -> StoredGroup? { try await base.group(user, forUpdate: forUpdate) }
    func insertGroup(_ user: UserID, registeredMillis: Int64) async throws { try await base.insertGroup(user, registeredMillis: registeredMillis) }
    func setModification(of user: UserID, to millis: Int64) async throws { try await base.setModification(of: user, to: millis) }
    func setPreferences(of user: UserID, to ranking: [DeviceID], stamp: ChangeStamp) async throws {
        try await base.setPreferences(of: user, to: ranking, stamp: stamp)
    }
    func setActiveScenario(of user: UserID, to name: String?, stamp: ChangeStamp) async throws {
        try await base.setActiveScenario(of: user, to: name, stamp: stamp)
    }
    func scenarios(of user: UserID) async throws -> [String: (scenario: Scenario?, stamp: ChangeStamp)] {
        try await base.scenarios(of: user)
    }
    func setScenario(of user: UserID, name: String, to scenario: Scenario?, stamp: ChangeStamp) async throws {
        try await base.setScenario(of: user, name: name, to: scenario, stamp: stamp)
    }
    func device(_ did: DeviceID) async throws -> StoredDevice? { try await base.device(did) }
    func devices(of user: UserID) async throws -> [StoredDevice] { try await base.devices(of: user) }
    func insertDevice(_ did: DeviceID, registeredMillis: Int64) async throws {
        if fault == .insertDevice { throw Self.injected }
        try await base.insertDevice(did, registeredMillis: registeredMillis)
    }
    func setStatus(of did: DeviceID, to status: DeviceStatus, stamp: ChangeStamp) async throws {
        try await base.setStatus(of: did, to: status, stamp: stamp)
    }
    func setLocator(of did: DeviceID, to locator: Locator?, stamp: ChangeStamp) async throws {
        try await base.setLocator(of: did, to: locator, stamp: stamp)
    }
    func setLastHeartbeat(of did: DeviceID, to millis: Int64) async throws {
        if fault == .setLastHeartbeat { throw Self.injected }
        try await base.setLastHeartbeat(of: did, to: millis)
    }
    func setKey(of did: DeviceID, to key: KeyFingerprint) async throws { try await base.setKey(of: did, to: key) }
    func setLabel(of did: DeviceID, to label: String?, stamp: ChangeStamp) async throws {
        try await base.setLabel(of: did, to: label, stamp: stamp)
    }
    func removeDevice(_ did: DeviceID, removedMillis: Int64, by remover: DeviceID) async throws {
        try await base.removeDevice(did, removedMillis: removedMillis, by: remover)
    }
    func removal(of did: DeviceID) async throws -> DeviceRemoval? { try await base.removal(of: did) }
    func firstDevice(of user: UserID) async throws -> DeviceID? { try await base.firstDevice(of: user) }
    func devices(atAddress address: String) async throws -> [StoredDevice] { try await base.devices(atAddress: address) }
    func devicesSilent(before millis: Int64) async throws -> [StoredDevice] { try await base.devicesSilent(before: millis) }
    func appendChange(to user: UserID, device: DeviceID, timeMillis: Int64, recordedMillis: Int64, change: Change) async throws -> ChangeEntry {
        try await base.appendChange(to: user, device: device, timeMillis: timeMillis, recordedMillis: recordedMillis, change: change)
    }
    func changes(of user: UserID, recordedAfter: Int64?) async throws -> [ChangeEntry] {
        try await base.changes(of: user, recordedAfter: recordedAfter)
    }
    func insertIntroduction(from: DeviceID, to: UserID, name: String, createdMillis: Int64) async throws -> Introduction {
        try await base.insertIntroduction(from: from, to: to, name: name, createdMillis: createdMillis)
    }
    func introduction(_ id: Int64) async throws -> Introduction? { try await base.introduction(id) }
    func introduction(from: UserID, to: UserID) async throws -> Introduction? { try await base.introduction(from: from, to: to) }
    func introductions(of user: UserID, incoming: Bool) async throws -> [Introduction] {
        try await base.introductions(of: user, incoming: incoming)
    }
    func deleteIntroduction(_ id: Int64) async throws { try await base.deleteIntroduction(id) }
    func contact(of user: UserID, _ contact: UserID) async throws -> StoredContact? { try await base.contact(of: user, contact) }
    func contacts(of user: UserID) async throws -> [StoredContact] { try await base.contacts(of: user) }
    func setContact(of user: UserID, _ contact: UserID, name: String?, stamp: ChangeStamp) async throws {
        try await base.setContact(of: user, contact, name: name, stamp: stamp)
    }
    func proxyExists(_ name: String) async throws -> Bool { try await base.proxyExists(name) }
    func insertProxy(_ name: String, registeredMillis: Int64, key: KeyFingerprint?) async throws {
        try await base.insertProxy(name, registeredMillis: registeredMillis, key: key)
    }
    func proxyKey(_ name: String) async throws -> KeyFingerprint? { try await base.proxyKey(name) }
}
