import Outbox
import Testing

/// The plan NATS and RabbitMQ publish by: one message per key in flight, keyless ones at once, and
/// a failure holds back the rest of its key only.
@Suite struct KeyOrderedBatchTests {
    private func drainReady(_ plan: inout OutboxKeyOrderedBatch.Plan) -> [Int] {
        var ready: [Int] = []
        while let index = plan.nextReady() { ready.append(index) }
        return ready
    }

    @Test func firstOfEachKeyAndEveryKeylessMessageGoAtOnce() {
        var plan = OutboxKeyOrderedBatch.Plan(["a", "b", "a", nil, "b", nil, "c"])
        #expect(drainReady(&plan) == [0, 1, 3, 5, 6])
        plan.finish(0, with: .delivered)
        #expect(drainReady(&plan) == [2], "a's second message goes once the first is stored")
        plan.finish(1, with: .delivered)
        #expect(drainReady(&plan) == [4])
        for index in [2, 3, 4, 5, 6] { plan.finish(index, with: .delivered) }
        #expect(plan.isFinished)
        #expect(plan.outcomes.allSatisfy { $0.isDelivered })
    }

    @Test func aFailureSkipsTheRestOfItsKeyOnly() {
        var plan = OutboxKeyOrderedBatch.Plan(["a", "a", "a", "b", "b"])
        #expect(drainReady(&plan) == [0, 3])
        plan.finish(0, with: .unavailable("server restarting"))
        #expect(plan.outcomes[1].isSkipped && plan.outcomes[2].isSkipped)
        #expect(drainReady(&plan).isEmpty)
        plan.finish(3, with: .delivered)
        #expect(drainReady(&plan) == [4])
        plan.finish(4, with: .failed("too large", isRetriable: false))
        #expect(plan.isFinished)
        #expect(plan.outcomes[0].isUnavailable && plan.outcomes[3].isDelivered && plan.outcomes[4].failureReason == "too large")
    }

    @Test func aMessagePutBackIsTheNextOneAgain() {
        var plan = OutboxKeyOrderedBatch.Plan(["a", "b"])
        let first = plan.nextReady()
        plan.putBack(first!)
        #expect(plan.nextReady() == first)
        #expect(plan.nextReady() == 1)
    }
}
