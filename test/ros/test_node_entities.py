"""What strvos_node puts into its executor's wait set (every entity costs Python on every wake-up, twice per
message): each subscription and timer once, one incompatible-QoS handler per topic, the camera topics on the
node's camera thread instead, nothing left after deactivate. In-process (no model is loaded), in an rclpy
context of its own and a namespace of its own."""
from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from rclpy.context import Context  # noqa: E402
from rclpy.event_handler import QoSPublisherEventType, QoSSubscriptionEventType  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from strvos_ros.node import StrvosNode  # noqa: E402


@pytest.fixture
def node():
    context = Context()
    rclpy.init(context=context)
    node = StrvosNode(context=context, namespace="/strvos_entities_test")
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def event_types(node) -> list:
    return [handler.event_type for handler in node.waitables]


def test_each_subscription_once_with_one_qos_handler_and_none_left_after_stop(node):
    before = event_types(node)
    services_before = {service.service_name for service in node.services}
    node._subscribe()  # what activate does (use_depth: colour, depth, two camera infos, prompt, targets)
    added_services = {service.service_name for service in node.services} - services_before
    assert added_services == {"/strvos_entities_test/strvos_node/set_target"}, added_services
    topics = [subscription.topic_name for subscription in node.subscriptions]
    assert len(topics) == 6 and len(set(topics)) == 6, topics
    added = event_types(node)[len(before):]
    assert added == [QoSSubscriptionEventType.RCL_SUBSCRIPTION_REQUESTED_INCOMPATIBLE_QOS] * 6, added
    # The camera topics and their QoS events are the camera thread's; the executor waits on the rest only.
    executor = SingleThreadedExecutor(context=node.context)
    served = {s.topic_name: executor.can_execute(s) for s in node.subscriptions}
    assert served == {"/strvos_entities_test/image": False, "/strvos_entities_test/depth": False,
                      "/strvos_entities_test/camera_info": False, "/strvos_entities_test/depth_camera_info": False,
                      "/strvos/prompt": True, "/strvos_entities_test/strvos_node/targets": True}, served
    camera_events = [h for s in node.subscriptions if not served[s.topic_name] for h in s.event_handlers]
    assert len(camera_events) == 4 and not any(executor.can_execute(h) for h in camera_events)
    node._stop_io()
    assert list(node.subscriptions) == [] and list(node.timers) == []
    assert {service.service_name for service in node.services} == services_before
    assert event_types(node) == before


def test_publishers_warn_on_incompatible_qos_only(node):
    from sensor_msgs.msg import Image

    before = len(event_types(node))
    node.create_publisher(Image, "~/probe", 5, event_callbacks=node.health.publisher_events())
    assert event_types(node)[before:] == [QoSPublisherEventType.RCL_PUBLISHER_OFFERED_INCOMPATIBLE_QOS]
