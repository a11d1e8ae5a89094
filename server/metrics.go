package server

import (
	"strconv"
	"time"

	"paystatus/payment"
	"paystatus/realtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics holds the Prometheus collectors; it also implements
// realtime.Observer. Each Server has its own registry, so tests can run
// several servers in one process.
type metrics struct {
	registry        *prometheus.Registry
	sockets         *prometheus.GaugeVec
	joins           prometheus.Counter
	joinsRefused    *prometheus.CounterVec
	leaves          prometheus.Counter
	rooms           prometheus.Gauge
	broadcasts      *prometheus.CounterVec
	eventsDropped   *prometheus.CounterVec
	gatewayRequests *prometheus.CounterVec
	transitions     *prometheus.CounterVec
	deliveryLatency prometheus.Histogram
	resends         *prometheus.CounterVec
	longPolls       prometheus.Gauge
	crossNodeDrops  *prometheus.CounterVec
	expired         prometheus.Counter
	lateCaptures    prometheus.Counter
	purged          prometheus.Counter
	sweepFailures   *prometheus.CounterVec
	ordersRefused   prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		sockets: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "paystatus_sockets_connected", Help: "Connected Socket.IO sockets on this node.",
		}, []string{"transport", "eio"}),
		joins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paystatus_room_joins_total", Help: "Accepted join-order requests.",
		}),
		joinsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystatus_room_joins_refused_total", Help: "Refused join-order requests, by reason.",
		}, []string{"reason"}),
		leaves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "paystatus_room_leaves_total", Help: "leave-order requests that left a room.",
		}),
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystatus_rooms", Help: "Order rooms with at least one socket on this node.",
		}),
		broadcasts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystatus_broadcasts_total", Help: "Broadcasts to order rooms, by event.",
		}, []string{"event"}),
		eventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystatus_socket_events_dropped_total", Help: "Inbound socket events ignored, by reason.",
		}, []string{"reason"}),
		gatewayRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystatus_gateway_requests_total", Help: "Gateway callbacks, by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystatus_status_transitions_total", Help: "Committed status transitions.",
		}, []string{"from", "to"}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "paystatus_callback_to_broadcast_seconds",
			Help:    "Time from the payment service taking a status change (after the request body was read and, for a gateway callback, its signature verified and payload parsed) to its broadcast being handed to this node's sockets; the commit is inside it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		resends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paystatus_update_resends_total", Help: "Updates sent again to a socket that had not acknowledged them in time, by event.",
		}, []string{"event"}),
		longPolls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "paystatus_long_polls_waiting", Help: "Long-poll requests currently held.",
		}),
	}
	m.crossNodeDrops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paystatus_redis_publish_dropped_total", Help: "Cross-node publishes through Redis that could not be made, by reason (error, queue_full).",
	}, []string{"reason"})
	// Present at zero from the start, so a rate over it has no gap.
	m.resends.WithLabelValues(realtime.EventPaymentStatus)
	m.expired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "paystatus_orders_expired_total", Help: "Orders this node moved to expired when their payment window passed.",
	})
	m.lateCaptures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "paystatus_late_captures_total", Help: "Completions applied to orders that had already expired (expired to completed).",
	})
	m.purged = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "paystatus_orders_purged_total", Help: "Terminal orders this node deleted after ORDER_RETENTION.",
	})
	m.sweepFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paystatus_expiry_sweep_failures_total", Help: "Failed expiry sweep operations, by operation (expire, purge, adopt).",
	}, []string{"op"})
	// Each sweep operation's series exists from the start, so an alert on
	// its increase sees the first failure.
	for _, op := range []string{"expire", "purge", "adopt"} {
		m.sweepFailures.WithLabelValues(op)
	}
	m.ordersRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "paystatus_orders_refused_quota_total", Help: "Order creations refused because ORDERS_MAX_PER_HOUR was reached.",
	})
	m.registry.MustRegister(m.sockets, m.crossNodeDrops, m.joins, m.joinsRefused, m.leaves, m.rooms, m.broadcasts,
		m.eventsDropped, m.gatewayRequests, m.transitions, m.deliveryLatency, m.resends, m.longPolls,
		m.expired, m.lateCaptures, m.purged, m.sweepFailures, m.ordersRefused,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) SocketConnected(transport string, eio int) {
	m.sockets.WithLabelValues(transport, strconv.Itoa(eio)).Inc()
}
func (m *metrics) SocketDisconnected(transport string, eio int) {
	m.sockets.WithLabelValues(transport, strconv.Itoa(eio)).Dec()
}
func (m *metrics) Joined()                   { m.joins.Inc() }
func (m *metrics) JoinRefused(reason string) { m.joinsRefused.WithLabelValues(reason).Inc() }
func (m *metrics) Left()                     { m.leaves.Inc() }
func (m *metrics) RoomsChanged(delta int)    { m.rooms.Add(float64(delta)) }
func (m *metrics) Broadcast(event string)    { m.broadcasts.WithLabelValues(event).Inc() }
func (m *metrics) Delivered(_ string, d time.Duration) {
	m.deliveryLatency.Observe(d.Seconds())
}
func (m *metrics) EventDropped(reason string) { m.eventsDropped.WithLabelValues(reason).Inc() }
func (m *metrics) Resent(event string)        { m.resends.WithLabelValues(event).Inc() }
func (m *metrics) CrossNodeDropped(reason string) {
	m.crossNodeDrops.WithLabelValues(reason).Inc()
}

// watchRedis exports paystatus_redis_up from up, read at each scrape.
func (m *metrics) watchRedis(up func() bool) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "paystatus_redis_up", Help: "1 while this node's last connection to Redis succeeded, else 0.",
	}, func() float64 {
		if up() {
			return 1
		}
		return 0
	}))
}

func (m *metrics) gateway(endpoint, outcome string) {
	m.gatewayRequests.WithLabelValues(endpoint, outcome).Inc()
}
func (m *metrics) transition(from, to payment.Status) {
	m.transitions.WithLabelValues(string(from), string(to)).Inc()
	if payment.IsLateCapture(from, to) {
		m.lateCaptures.Inc()
	}
}

// OrderExpired, OrdersPurged and SweepFailed implement payment.SweepObserver.
func (m *metrics) OrderExpired(c payment.StatusChange) {
	m.expired.Inc()
	m.transition(c.PreviousStatus, c.Status)
}
func (m *metrics) OrdersPurged(n int)    { m.purged.Add(float64(n)) }
func (m *metrics) SweepFailed(op string) { m.sweepFailures.WithLabelValues(op).Inc() }
func (m *metrics) longPollStarted()      { m.longPolls.Inc() }
func (m *metrics) longPollEnded()        { m.longPolls.Dec() }
