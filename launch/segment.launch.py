"""Start strvos_node on a camera: ros2 launch strvos_ros segment.launch.py camera:=/camera prompt:="the red mug".

Topic arguments default to the RealSense layout under `camera` (colour + depth aligned to colour); give
image/depth/camera_info/depth_camera_info explicitly for other drivers.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = [
    ("model", "default", "default (the shipped tiny model), model folder (HF export), hub id or random:<preset>"),
    ("device", "cpu", "torch device (cpu, cuda)"),
    ("dtype", "float32", "float32 | bfloat16 | float16"),
    ("threads", "", "torch CPU threads of the inference thread (0: torch's default); empty: the config file's"),
    ("prompt", "", "initial referring expression of target 'default'"),
    ("use_depth", "true", "subscribe to depth and publish 3D poses"),
    ("camera", "/camera", "camera namespace used by the topic defaults below"),
    ("image", [LaunchConfiguration("camera"), "/color/image_raw"], "colour image topic"),
    ("camera_info", [LaunchConfiguration("camera"), "/color/camera_info"], "colour CameraInfo topic"),
    ("depth", [LaunchConfiguration("camera"), "/aligned_depth_to_color/image_raw"], "depth image topic"),
    ("depth_camera_info", [LaunchConfiguration("camera"), "/aligned_depth_to_color/camera_info"],
     "CameraInfo of the depth image"),
    ("namespace", "", "namespace of the node"),
    ("name", "strvos_node", "name of the node"),
    ("config", PathJoinSubstitution([FindPackageShare("strvos_ros"), "config", "segment.yaml"]), "parameters file"),
    ("rviz", "false", "also start rviz2 with config/strvos.rviz"),
    ("log_level", "info", "node log level"),
]


def _node(context) -> list[Node]:
    """The node; `threads` is passed only when given, so the config file's value holds otherwise."""
    arg = LaunchConfiguration
    overrides = {}
    threads = context.launch_configurations.get("threads", "").strip()
    if threads:
        overrides["threads"] = ParameterValue(arg("threads"), value_type=int)
    return [Node(
        package="strvos_ros",
        executable="strvos_node",
        name=arg("name"),
        namespace=arg("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[arg("config"), {
            # explicit types: a prompt of "" or a model named "1b" must stay strings
            **{key: ParameterValue(arg(key), value_type=str) for key in ("model", "device", "dtype", "prompt")},
            "use_depth": ParameterValue(arg("use_depth"), value_type=bool),
            **overrides,
        }],
        remappings=[
            ("image", arg("image")),
            ("image/compressed", [arg("image"), "/compressed"]),
            ("camera_info", arg("camera_info")),
            ("depth", arg("depth")),
            ("depth_camera_info", arg("depth_camera_info")),
        ],
        arguments=["--ros-args", "--log-level", arg("log_level")],
    )]


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", PathJoinSubstitution([FindPackageShare("strvos_ros"), "config", "strvos.rviz"])],
        condition=IfCondition(arg("rviz")),
        output="screen",
    )
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in ARGUMENTS]
    return LaunchDescription([*declared, OpaqueFunction(function=_node), rviz])
